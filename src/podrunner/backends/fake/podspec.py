"""The API server's pod rules the fake follows: PodSpec validation, defaulting and admission.

Written from kube-apiserver 1.36's behaviour (``pkg/apis/core/validation``, the v1 defaulting
functions and the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins),
as the differential tier (``tests/differential``) measures it against a real server. Causes
carry the server's field paths and cause types; the tables are module constants, built once.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from podrunner import _validation
from podrunner.errors import Forbidden

if TYPE_CHECKING:
    from collections.abc import Callable

    from podrunner.backends.fake.validation import Errors

__all__ = [
    "FINALIZER_STANDARD",
    "admit_pod",
    "canonical_quantity",
    "check_finalizers",
    "check_owner_references",
    "check_pod_spec",
    "default_tolerations",
    "prune_pod",
]

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
PRIORITY_CLASSES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
FINALIZER_STANDARD = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TOLERATION_OPS = ("Equal", "Exists")
_NATIVE_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
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
_ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
_IANA_SVC_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_IANA_HAS_LETTER = re.compile(r"[a-z]")
_SUBSCRIPT_RE = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Known fields of the structs the fake stores; anything else is dropped, as decoding drops it.
POD_SPEC_FIELDS = frozenset(
    {
        "volumes",
        "initContainers",
        "containers",
        "ephemeralContainers",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "dnsPolicy",
        "nodeSelector",
        "serviceAccountName",
        "serviceAccount",
        "automountServiceAccountToken",
        "nodeName",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "shareProcessNamespace",
        "securityContext",
        "imagePullSecrets",
        "hostname",
        "subdomain",
        "affinity",
        "schedulerName",
        "tolerations",
        "hostAliases",
        "priorityClassName",
        "priority",
        "dnsConfig",
        "readinessGates",
        "runtimeClassName",
        "enableServiceLinks",
        "preemptionPolicy",
        "overhead",
        "topologySpreadConstraints",
        "setHostnameAsFQDN",
        "os",
        "hostUsers",
        "schedulingGates",
        "resourceClaims",
        "resources",
        "hostnameOverride",
    }
)
CONTAINER_FIELDS = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "envFrom",
        "env",
        "resources",
        "resizePolicy",
        "restartPolicy",
        "restartPolicyRules",
        "volumeMounts",
        "volumeDevices",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
    }
)
TOP_FIELDS = {
    "Pod": frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
    "Secret": frozenset(
        {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}
    ),
    "ConfigMap": frozenset({"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}),
    "Namespace": frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
    "Event": frozenset(
        {
            "apiVersion",
            "kind",
            "metadata",
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        }
    ),
}
META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
# Go maps (and slices) marked omitempty vanish when empty; so do empty omitempty strings.
_MAP_FIELDS = frozenset({"labels", "annotations", "nodeSelector", "limits", "requests", "overhead"})


# -- quantities ---------------------------------------------------------------------------------

_DEC_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BIN_SUFFIX = ((60, "Ei"), (50, "Pi"), (40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki"))
_QTY_RE = re.compile(r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)$")


def _format_of(suffix: str) -> str:
    if suffix.endswith("i"):
        return "binary"
    if suffix[:1] in ("e", "E"):
        return "exponent"
    return "decimal"


def _render(value: Decimal, fmt: str) -> str:
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mag = -value if value < 0 else value
    if fmt == "binary" and mag >= 1024 and mag == mag.to_integral_value():
        n = int(mag)
        for shift, suffix in _BIN_SUFFIX:
            if n % (1 << shift) == 0:
                return f"{sign}{n >> shift}{suffix}"
        return f"{sign}{n}"
    exp = 18
    while exp > -9:
        scaled = mag.scaleb(-exp)
        if scaled == scaled.to_integral_value() and scaled >= 1:
            break
        exp -= 3
    mantissa = int(mag.scaleb(-exp).to_integral_value(ROUND_CEILING))
    if fmt == "exponent":
        return f"{sign}{mantissa}" + (f"e{exp}" if exp else "")
    return f"{sign}{mantissa}{_DEC_SUFFIX[exp]}"


def _reusable(text: str) -> bool:
    """Whether the server keeps the string as written (ParseQuantity's canonical fast path)."""
    m = _QTY_RE.match(text)
    if m is None:
        return False
    _, num, denom, suffix = m.groups()
    fmt = _format_of(suffix)
    if fmt == "binary":
        exponent = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}.get(suffix)
        if exponent is None or denom:
            return False
        value = int(num or "0")
        return exponent % 10 == 0 and (value & 0x07) != 0
    if fmt == "exponent":
        try:
            exponent = int(suffix[1:])
        except ValueError:
            return False
    else:
        exponent = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12}.get(
            suffix, 99
        )
        if exponent == 99:
            exponent = {"P": 15, "E": 18}.get(suffix, 99)
            if exponent == 99:
                return False
    scale = exponent - len(denom or "")
    shifted = (num or "") + (denom or "")
    if not shifted or scale < -9:
        return False
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


@functools.lru_cache(maxsize=4096)
def canonical_quantity(text: str, milli: bool) -> str:
    """Return ``text`` as the server stores it (rounded up to ``1m`` when ``milli``)."""
    amount = _validation.parse_quantity(text)
    m = _QTY_RE.match(text)
    fmt = _format_of(m.group(4) if m else "")
    places = Decimal("0.001") if milli else Decimal("1e-9")
    try:
        rounded = amount.quantize(places, rounding=ROUND_CEILING)
    except InvalidOperation:
        return text
    if rounded == amount and _reusable(text):
        return text
    if fmt == "binary" and -1024 < rounded < 1024:
        fmt = "decimal"
    if fmt == "binary" and rounded != rounded.to_integral_value():
        fmt = "decimal"
    return _render(rounded, fmt)


def number_quantity(value: float) -> str:
    """The text of a JSON number given where a quantity belongs."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "nan"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


# -- metadata -----------------------------------------------------------------------------------


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


def prune(value: Any) -> Any:
    """Drop what Go's ``omitempty`` drops: empty maps, lists and strings, and nulls."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None or item == "" or item == [] or (item == {} and key in _MAP_FIELDS):
                continue
            if key in _MAP_FIELDS:
                out[key] = item  # a map's values are data, kept as given
            else:
                out[key] = prune(item)
        return out
    if isinstance(value, list):
        return [prune(item) for item in value]
    return value


def drop_unknown(kind: str, obj: dict[str, Any]) -> None:
    """Drop fields the kind does not have, as the server's decoder does (with a warning)."""
    known = TOP_FIELDS[kind]
    for key in [k for k in obj if k not in known]:
        del obj[key]
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in META_FIELDS]:
            del meta[key]
    if kind == "Pod":
        spec = obj.get("spec")
        if isinstance(spec, dict):
            for key in [k for k in spec if k not in POD_SPEC_FIELDS]:
                del spec[key]
            for field in ("containers", "initContainers"):
                for c in spec.get(field) or ():
                    if isinstance(c, dict):
                        for key in [k for k in c if k not in CONTAINER_FIELDS]:
                            del c[key]


# -- admission ----------------------------------------------------------------------------------


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
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if not isinstance(account, str) or not accounts(ns, account):
        raise Forbidden(
            f'pods "{name}" is forbidden: error looking up service account {ns}/{account}: '
            f'serviceaccount "{account}" not found',
            kind="Pod",
            namespace=ns,
            name=name,
        )
    spec["serviceAccountName"] = account
    if spec.get("automountServiceAccountToken") is not False:
        _mount_token(spec, suffix())
    # Priority.
    klass = spec.get("priorityClassName")
    priority = 0
    if klass:
        if klass not in PRIORITY_CLASSES:
            raise Forbidden(
                f'pods "{name}" is forbidden: no PriorityClass with name {klass} was found',
                kind="Pod",
                namespace=ns,
                name=name,
            )
        priority = PRIORITY_CLASSES[klass]
    given = spec.get("priority")
    if given is not None and given != priority:
        raise Forbidden(
            f'pods "{name}" is forbidden: the integer value of priority ({given}) must not be '
            f"provided in pod spec; priority admission controller computed {priority} from the "
            "given PriorityClass name",
            kind="Pod",
            namespace=ns,
            name=name,
        )
    spec["priority"] = priority
    policy = spec.get("preemptionPolicy")
    if policy is not None and policy != "PreemptLowerPriority":
        raise Forbidden(
            f'pods "{name}" is forbidden: the string value of PreemptionPolicy ({policy}) must '
            "not be provided in pod spec; priority admission controller computed "
            "PreemptLowerPriority from the given PriorityClass name",
            kind="Pod",
            namespace=ns,
            name=name,
        )
    spec["preemptionPolicy"] = "PreemptLowerPriority"
    default_tolerations(spec)


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
            "projected": {
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
            },
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


# -- PodSpec ------------------------------------------------------------------------------------


def _port_name_error(name: str) -> str | None:
    if len(name) > 15:
        return "must be no more than 15 characters"
    if not _IANA_SVC_RE.match(name):
        return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
    if "--" in name:
        return "must not contain consecutive hyphens"
    if not _IANA_HAS_LETTER.search(name):
        return "must contain at least one letter (a-z)"
    return None


def _mode(errs: Errors, path: str, value: object) -> None:
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
        _mode(errs, f"{ipath}.mode", item.get("mode"))


def _check_volumes(spec: dict[str, Any], errs: Errors) -> set[str]:
    """ValidateVolumes: only a volume without errors is declared (for mounts and duplicates)."""
    names: set[str] = set()
    volumes = spec.get("volumes")
    for i, vol in enumerate(volumes if isinstance(volumes, list) else ()):
        if not isinstance(vol, dict):
            continue
        path = f"spec.volumes[{i}]"
        before = len(errs.causes)
        sources = [s for s in _VOLUME_SOURCES if vol.get(s) is not None]
        if not sources:
            vol["emptyDir"] = {}  # SetDefaults_Volume
            sources = ["emptyDir"]
        for extra in sources[1:]:
            errs.forbidden(f"{path}.{extra}", "may not specify more than 1 volume type")
        source = vol[sources[0]]
        spath = f"{path}.{sources[0]}"
        if isinstance(source, dict) and len(sources) == 1:
            if sources[0] in ("configMap", "secret", "projected", "downwardAPI"):
                source.setdefault("defaultMode", 420)
                _mode(errs, f"{spath}.defaultMode", source.get("defaultMode"))
            if sources[0] == "configMap":
                if not source.get("name"):
                    errs.required(f"{spath}.name")
                _key_to_paths(errs, spath, source.get("items"))
            elif sources[0] == "secret":
                if not source.get("secretName"):
                    errs.required(f"{spath}.secretName")
                _key_to_paths(errs, spath, source.get("items"))
        name = vol.get("name") or ""
        if not name:
            errs.required(f"{path}.name")
        else:
            error = _validation.dns1123_label_error(name)
            if error:
                errs.invalid(f"{path}.name", name, error)
        if name in names:
            errs.duplicate(f"{path}.name", name)
        if len(errs.causes) == before:
            names.add(name)
    return names


def _check_env(c: dict[str, Any], path: str, errs: Errors) -> None:
    for j, var in enumerate(c.get("env") or ()):
        if not isinstance(var, dict):
            continue
        src = var.get("valueFrom")
        if src is None:
            continue
        vpath = f"{path}.env[{j}].valueFrom"
        if not isinstance(src, dict):
            continue
        refs = [
            k
            for k in (
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
                "fileKeyRef",
            )
            if src.get(k) is not None
        ]
        if var.get("value"):
            errs.invalid(vpath, "", "may not be specified when `value` is not empty")
        if not refs:
            errs.invalid(
                vpath,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                "`secretKeyRef`",
            )
            continue
        if len(refs) > 1:
            errs.invalid(vpath, "", "may not have more than one field specified at a time")
            continue
        ref = src[refs[0]]
        if not isinstance(ref, dict):
            continue
        rpath = f"{vpath}.{refs[0]}"
        if refs[0] == "fieldRef":
            ref.setdefault("apiVersion", "v1")
            fp = ref.get("fieldPath") or ""
            if not fp:
                errs.required(f"{rpath}.fieldPath")
            elif fp not in _ENV_FIELD_PATHS and not _SUBSCRIPT_RE.match(fp):
                errs.invalid(
                    f"{rpath}.fieldPath",
                    fp,
                    f"error converting fieldPath: field label not supported: {fp}",
                )
        elif refs[0] in ("configMapKeyRef", "secretKeyRef"):
            if not ref.get("name"):
                errs.required(f"{rpath}.name")
            if not ref.get("key"):
                errs.required(f"{rpath}.key")
            else:
                error = _validation.config_map_key_error(ref["key"])
                if error:
                    errs.invalid(f"{rpath}.key", ref["key"], error)
    for j, src in enumerate(c.get("envFrom") or ()):
        if not isinstance(src, dict):
            continue
        refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        epath = f"{path}.envFrom"
        if not refs:
            errs.invalid(epath, "", "must specify one of: `configMapRef` or `secretRef`")
        elif len(refs) > 1:
            errs.invalid(epath, "", "may not have more than one field specified at a time")
        else:
            ref = src[refs[0]]
            if isinstance(ref, dict) and not ref.get("name"):
                errs.required(f"{epath}[{j}].{refs[0]}.name")


def _check_ports(
    c: dict[str, Any], path: str, errs: Errors, seen_names: set[str], host_ports: set[str]
) -> None:
    ports = c.get("ports")
    for j, port in enumerate(ports if isinstance(ports, list) else ()):
        if not isinstance(port, dict):
            continue
        ppath = f"{path}.ports[{j}]"
        name = port.get("name")
        if name:
            error = _port_name_error(name)
            if error:
                errs.invalid(f"{ppath}.name", name, error)
            elif name in seen_names:
                errs.duplicate(f"{ppath}.name", name)
            seen_names.add(name)
        number = port.get("containerPort")
        if not number:
            errs.required(f"{ppath}.containerPort")
        elif isinstance(number, int) and not 1 <= number <= 65535:
            errs.invalid(f"{ppath}.containerPort", number, "must be between 1 and 65535, inclusive")
        host = port.get("hostPort")
        if host == 0:
            del port["hostPort"]  # omitempty
        elif isinstance(host, int) and not 1 <= host <= 65535:
            errs.invalid(f"{ppath}.hostPort", host, "must be between 1 and 65535, inclusive")
        protocol = port.setdefault("protocol", "TCP")
        if protocol not in _PROTOCOLS:
            errs.not_supported(f"{ppath}.protocol", protocol, _PROTOCOLS)
        if host:
            key = f"{protocol}/{port.get('hostIP') or ''}/{host}"
            if key in host_ports:
                errs.duplicate(f"{ppath}.hostPort", key)
            host_ports.add(key)


def _check_mounts(c: dict[str, Any], path: str, errs: Errors, volumes: set[str]) -> None:
    mounts = c.get("volumeMounts")
    seen: set[str] = set()
    for j, mount in enumerate(mounts if isinstance(mounts, list) else ()):
        if not isinstance(mount, dict):
            continue
        mpath = f"{path}.volumeMounts[{j}]"
        name = mount.get("name") or ""
        if not name:
            errs.required(f"{mpath}.name")
        elif name not in volumes:
            errs.not_found(f"{mpath}.name", name)
        target = mount.get("mountPath") or ""
        if not target:
            errs.required(f"{mpath}.mountPath")
        elif target in seen:
            errs.invalid(f"{mpath}.mountPath", target, "must be unique")
        seen.add(target)


def _check_security(ctx: object, path: str, errs: Errors) -> None:
    if not isinstance(ctx, dict):
        return
    for field in ("runAsUser", "runAsGroup", "fsGroup"):
        value = ctx.get(field)
        if isinstance(value, int) and not 0 <= value <= 2147483647:
            errs.invalid(f"{path}.{field}", value, "must be between 0 and 2147483647, inclusive")


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


def resource_name_error(name: str) -> str | None:
    """validateContainerResourceName: a qualified name, and a standard one without a domain."""
    error = _validation.label_key_error(name)
    if error:
        return error
    if "/" not in name:
        if name in _NATIVE_RESOURCES or name.startswith("hugepages-"):
            return None
        return "must be a standard resource for containers"
    if name.startswith(("kubernetes.io/", "requests.")):
        return "must be a standard resource for containers"
    return None


def is_extended(name: str) -> bool:
    """An extended resource: a domain-qualified name outside ``kubernetes.io``."""
    return "/" in name and not name.startswith("kubernetes.io/")


def check_pod_spec(spec: dict[str, Any], errs: Errors) -> None:
    """Validate the PodSpec rules the fake knows beyond names, images and resources."""
    volumes = _check_volumes(spec, errs)
    port_names: set[str] = set()
    host_ports: set[str] = set()
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        for i, c in enumerate(items if isinstance(items, list) else ()):
            if not isinstance(c, dict):
                continue
            path = f"spec.{field}[{i}]"
            _check_env(c, path, errs)
            _check_ports(c, path, errs, port_names if field == "containers" else set(), host_ports)
            _check_mounts(c, path, errs, volumes)
            _check_security(c.get("securityContext"), f"{path}.securityContext", errs)
            policy = c.get("imagePullPolicy")
            if policy is not None and policy not in _PULL_POLICIES:
                errs.not_supported(f"{path}.imagePullPolicy", policy, _PULL_POLICIES)
            tmp = c.get("terminationMessagePolicy")
            if tmp is not None and tmp not in _MESSAGE_POLICIES:
                errs.not_supported(f"{path}.terminationMessagePolicy", tmp, _MESSAGE_POLICIES)
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in _DNS_POLICIES:
        errs.not_supported("spec.dnsPolicy", dns, _DNS_POLICIES)
    for field in ("hostname", "subdomain"):
        value = spec.get(field)
        if value:
            error = _validation.dns1123_label_error(value)
            if error:
                errs.invalid(f"spec.{field}", value, error)
    _check_security(spec.get("securityContext"), "spec.securityContext", errs)
    _check_tolerations(spec, errs)


def prune_pod(obj: dict[str, Any]) -> None:
    """Drop the empty omitempty fields of a pod's metadata and spec."""
    for part in ("metadata", "spec"):
        value = obj.get(part)
        if isinstance(value, dict):
            # In place: callers hold references to these dicts.
            pruned = prune(value)
            value.clear()
            value.update(pruned)
