"""The pod spec builder: frozen attrs value objects, validated on construction.

A :class:`PodSpec` describes one pod once, in Python. Every field is checked when the object is
built, so a bad value raises :class:`~podrunner.errors.SpecError` (field, value, rule) long
before anything reaches a cluster. Specs are immutable: the ``with_*`` methods return
re-validated copies made with :func:`attrs.evolve`.

Design notes:

* ``attrs.evolve`` feeds every unchanged, already-converted value back through the converters,
  so converters here are idempotent (a tuple stays the same tuple, a :class:`FrozenMap` the
  same map) and never generate names or random values. Names and run ids are made when the
  manifest is built (:mod:`podrunner.manifest`).
* The rules mirror the API server's (:mod:`podrunner._validation`); a few are deliberately
  stricter where the server's leniency only defers the failure to run time (see the field
  docs).
* Secret values never show in ``repr`` or in error messages.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from typing import Any, Literal, TypeVar

import attrs

from podrunner import _validation as v
from podrunner.errors import REDACTED, SpecError, kind_of

__all__ = [
    "MAX_ARG_BYTES",
    "MAX_EXEC_BYTES",
    "MAX_POD_CONTENT_BYTES",
    "RESERVED_ANNOTATION_BYTES",
    "RESERVED_ANNOTATION_KEYS",
    "RESERVED_LABEL_KEYS",
    "CleanupPolicy",
    "Deadlines",
    "EnvVar",
    "FrozenMap",
    "ImagePullPolicy",
    "PodSpec",
    "Resources",
    "SecretMap",
    "SecretRef",
    "SecurityProfile",
    "Toleration",
    "Volume",
    "VolumeKind",
]

RESERVED_LABEL_KEYS: frozenset[str] = frozenset(
    {"app.kubernetes.io/managed-by", "app.kubernetes.io/component", "podrunner.dev/run-id"}
)
"""Label keys podrunner sets on everything it creates; user labels may not use them."""

RESERVED_ANNOTATION_KEYS: frozenset[str] = frozenset({"podrunner.dev/expires-at"})
"""Annotation keys the runner sets on everything it creates; user annotations may not use them."""

RESERVED_ANNOTATION_BYTES = 64
"""Room kept free in the API server's 256 KiB annotation budget for the runner's annotations.

The runner adds ``podrunner.dev/expires-at: <RFC 3339 time>`` (24 + 20 bytes) to every object
it creates; user annotations may use at most ``TOTAL_ANNOTATION_SIZE_LIMIT`` minus this, so the
create never fails with 422 because of what podrunner added.
"""

MAX_ARG_BYTES = 128 * 1024 - 1
"""Longest single argument or ``NAME=value`` environment string ``execve`` takes, in bytes.

Linux caps each string at ``MAX_ARG_STRLEN`` (32 pages, 131072 bytes, terminating NUL
included); a longer one fails at container start with "Argument list too long".
"""

MAX_EXEC_BYTES = 2 * 1024 * 1024 - 64 * 1024
"""Most bytes the argv and environment strings of one container may take together.

``execve`` refuses more than ``ARG_MAX`` (a quarter of the 8 MiB default stack, 2 MiB);
64 KiB are left for what the image and the kubelet add (``PATH``, service variables...).
"""

MAX_POD_CONTENT_BYTES = 1024 * 1024
"""Most bytes the strings of one pod (argv, environment, labels, annotations...) may total.

etcd refuses a request over 1.5 MiB (its default ``--max-request-bytes``), and the stored pod
grows after the create (status, managed fields); 1 MiB keeps well clear of that limit, and is
the limit the API server applies to a Secret's or ConfigMap's data.
"""

_MAX_ID = 2**31 - 1  # libcontainer's UID/GID range, which the API server enforces

_V = TypeVar("_V")
_E = TypeVar("_E", bound=Enum)


# --------------------------------------------------------------------------------------------
# Small immutable mapping


class FrozenMap(Mapping[str, _V]):
    """An immutable, hashable, insertion-ordered mapping used for the spec's dict-like fields.

    It compares equal to any mapping with the same items, so ``spec.labels == {"a": "b"}``
    holds.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, _V] | Iterable[tuple[str, _V]] = ()) -> None:
        self._data: dict[str, _V] = dict(data)
        self._hash: int | None = None

    def __getitem__(self, key: str) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def to_dict(self) -> dict[str, _V]:
        """Return a plain, mutable copy."""
        return dict(self._data)


class SecretMap(FrozenMap[_V]):
    """A :class:`FrozenMap` of secret values: its ``repr`` and ``str`` show names, not values.

    ``PodSpec.secret_env`` and ``PodSpec.secret_files`` are secret maps, so printing a
    spec, a field of it or a traceback's locals never shows a secret. A :class:`SecretRef`
    (a name and a key, no value) is shown as itself.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        shown = {k: (v if isinstance(v, SecretRef) else REDACTED) for k, v in self._data.items()}
        return f"SecretMap({shown!r})"

    __str__ = __repr__


# --------------------------------------------------------------------------------------------
# Converter and validator helpers (each raises SpecError naming the field)


def _check(field: str, value: object, error: str | None) -> None:
    if error is not None:
        raise SpecError(field, value, error)


def _require_str(field: str, value: object, *, secret: bool = False) -> str:
    if not isinstance(value, str):
        shown = REDACTED if secret else value
        raise SpecError(field, shown, f"must be a string, not {kind_of(value)}")
    return value


def _clean(field: str, text: str, *, secret: bool = False, allow_nul: bool = False) -> str:
    """Refuse what cannot travel to the container: NUL characters and lone surrogates.

    ``execve`` ends each string at a NUL, and a lone surrogate has no UTF-8 encoding, so the
    JSON sent to the API server could not carry it either.
    """
    shown = REDACTED if secret else text
    if not allow_nul and "\x00" in text:
        raise SpecError(field, shown, "must not contain NUL characters (\\x00)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(
            field,
            shown,
            "must be valid Unicode: it holds a lone surrogate, which UTF-8 cannot encode",
        ) from None
    return text


def _text(field: str, value: object, *, secret: bool = False) -> str:
    return _clean(field, _require_str(field, value, secret=secret), secret=secret)


def _blen(text: str) -> int:
    return len(text.encode("utf-8"))


def _str_tuple(field: str, value: object) -> tuple[str, ...]:
    # A bare string is iterable too; as an argv or a name list it is almost always a mistake.
    if isinstance(value, (str, bytes)):
        raise SpecError(field, value, "must be a sequence of strings, not a single string")
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise SpecError(field, value, f"must be a sequence of strings, not {kind_of(value)}")
    items = tuple(value)
    for i, item in enumerate(items):
        _text(f"{field}[{i}]", item)
    return items


def _mapping(field: str, value: object) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(field, value, f"must be a mapping, not {kind_of(value)}")
    return value


def _str_map(field: str, value: object) -> FrozenMap[str]:
    items = _mapping(field, value)
    for key, item in items.items():
        _text(field, key)
        _text(f"{field}[{key}]", item)
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


def _enum(cls: type[_E], field: str, value: object) -> _E:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        for member in cls:
            if value in (member.value, member.name, member.name.lower()):
                return member
    allowed = ", ".join(repr(m.value) for m in cls)
    raise SpecError(field, value, f"must be one of {allowed}")


def _optional_int(field: str, value: object, *, minimum: int, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, value, f"must be an integer, not {kind_of(value)}")
    if not minimum <= value <= maximum:
        raise SpecError(field, value, f"must be between {minimum} and {maximum}, inclusive")
    return value


def _absolute_path(field: str, value: object) -> str:
    path = _text(field, value)
    if not path.startswith("/"):
        raise SpecError(field, path, "must be an absolute path (start with '/')")
    if ".." in path.split("/"):
        raise SpecError(field, path, "must not contain '..' elements")
    return path


def _quantity(field: str, value: object) -> str | None:
    if value is None:
        return None
    # Numbers are accepted for convenience (cpu_limit=2); bools are not numbers here.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    text = _require_str(field, value)
    _check(field, text, v.quantity_error(text))
    if v.parse_quantity(text) < 0:
        raise SpecError(field, text, "must be greater than or equal to 0")
    return text


def _bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, value, f"must be True or False, not {kind_of(value)}")
    return value


# --------------------------------------------------------------------------------------------
# Enums


class ImagePullPolicy(str, Enum):
    """When the kubelet pulls the image (the values are Kubernetes' own)."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"

    def __str__(self) -> str:
        return self.value


class SecurityProfile(str, Enum):
    """Which Pod Security Standard the pod is built to pass.

    * ``RESTRICTED`` (default): runAsNonRoot (uid 65532 unless ``run_as_user`` says
      otherwise), seccomp ``RuntimeDefault``, no privilege escalation, all capabilities
      dropped.
    * ``BASELINE``: no privilege escalation; the image's user is kept.
    * ``NONE``: an explicit opt-out; no security context beyond what is asked field by field.
      Needed for host-path volumes, which both other standards forbid.
    """

    RESTRICTED = "restricted"
    BASELINE = "baseline"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


class CleanupPolicy(str, Enum):
    """What the runner deletes when a run ends."""

    ALWAYS = "always"
    """Delete the pod and its objects whatever happened (default)."""
    ON_SUCCESS = "on-success"
    """Keep them for inspection when the run failed."""
    NEVER = "never"
    """Keep them; ``podrunner reap`` or the caller deletes them."""

    def __str__(self) -> str:
        return self.value


# --------------------------------------------------------------------------------------------
# Resources


def _cpu_limit(value: str | float | None) -> str | None:
    return _quantity("resources.cpu_limit", value)


def _memory_limit(value: str | float | None) -> str | None:
    return _quantity("resources.memory_limit", value)


def _cpu_request(value: str | float | None) -> str | None:
    return _quantity("resources.cpu_request", value)


def _memory_request(value: str | float | None) -> str | None:
    return _quantity("resources.memory_request", value)


@attrs.frozen
class Resources:
    """CPU and memory limits and requests, as Kubernetes quantities.

    CPU is in cores (``"500m"``, ``"2"``), memory in bytes (``"512Mi"``, ``"1.5Gi"``,
    ``"1e9"``). Numbers are accepted and turned into strings. A request above its limit is
    rejected, as the API server would. Empty ``Resources()`` sets nothing (the namespace's
    defaults apply).

    Attributes:
        cpu_limit: CPU limit.
        memory_limit: Memory limit; the container is OOM-killed above it.
        cpu_request: CPU the scheduler reserves.
        memory_request: Memory the scheduler reserves.
    """

    cpu_limit: str | None = attrs.field(default=None, converter=_cpu_limit)
    memory_limit: str | None = attrs.field(default=None, converter=_memory_limit)
    cpu_request: str | None = attrs.field(default=None, converter=_cpu_request)
    memory_request: str | None = attrs.field(default=None, converter=_memory_request)

    def __attrs_post_init__(self) -> None:
        for resource, request, limit in (
            ("cpu", self.cpu_request, self.cpu_limit),
            ("memory", self.memory_request, self.memory_limit),
        ):
            if (
                request is not None
                and limit is not None
                and v.parse_quantity(request) > v.parse_quantity(limit)
            ):
                raise SpecError(
                    f"resources.{resource}_request",
                    request,
                    f"must be less than or equal to {resource} limit of {limit}",
                )

    def to_manifest(self) -> dict[str, dict[str, str]]:
        """Return the container's ``resources`` object (empty when nothing is set)."""
        out: dict[str, dict[str, str]] = {}
        limits = {k: q for k, q in (("cpu", self.cpu_limit), ("memory", self.memory_limit)) if q}
        requests = {
            k: q for k, q in (("cpu", self.cpu_request), ("memory", self.memory_request)) if q
        }
        if limits:
            out["limits"] = limits
        if requests:
            out["requests"] = requests
        return out


# --------------------------------------------------------------------------------------------
# Secrets and environment


def _secret_name(value: str) -> str:
    name = _require_str("secret_ref.name", value)
    _check("secret_ref.name", name, v.dns1123_subdomain_error(name))
    return name


def _secret_key(value: str) -> str:
    key = _require_str("secret_ref.key", value)
    _check("secret_ref.key", key, v.config_map_key_error(key))
    return key


@attrs.frozen
class SecretRef:
    """A key of an existing Secret in the pod's namespace (``secretKeyRef``).

    Attributes:
        name: The Secret's name.
        key: The key in its ``data``.
    """

    name: str = attrs.field(converter=_secret_name)
    key: str = attrs.field(converter=_secret_key)


def _env_name(value: str) -> str:
    name = _require_str("env.name", value)
    _check("env.name", name, v.env_name_error(name))
    return name


def _env_value(value: str | None) -> str | None:
    return None if value is None else _text("env.value", value)


def _env_secret_ref(value: SecretRef | None) -> SecretRef | None:
    if value is not None and not isinstance(value, SecretRef):
        raise SpecError("env.secret_ref", value, f"must be a SecretRef, not {kind_of(value)}")
    return value


@attrs.frozen
class EnvVar:
    """One environment variable: a plain value, or a reference to an existing Secret's key.

    Names follow the API server's current rule: non-empty printable ASCII without ``=``.

    Attributes:
        name: The variable's name.
        value: Its value (``None`` and no ``secret_ref`` means an empty value).
        secret_ref: Take the value from this Secret key instead.
    """

    name: str = attrs.field(converter=_env_name)
    value: str | None = attrs.field(default=None, converter=_env_value)
    secret_ref: SecretRef | None = attrs.field(default=None, converter=_env_secret_ref)

    def __attrs_post_init__(self) -> None:
        if self.value is not None and self.secret_ref is not None:
            raise SpecError("env.value", self.name, "give either value or secret_ref, not both")

    def to_manifest(self) -> dict[str, Any]:
        """Return the container ``env`` entry."""
        if self.secret_ref is not None:
            ref = {"name": self.secret_ref.name, "key": self.secret_ref.key}
            return {"name": self.name, "valueFrom": {"secretKeyRef": ref}}
        return {"name": self.name, "value": self.value or ""}


# --------------------------------------------------------------------------------------------
# Volumes

VolumeKind = Literal["hostPath", "persistentVolumeClaim", "configMap", "secret", "emptyDir"]
_VOLUME_KINDS: tuple[str, ...] = (
    "hostPath",
    "persistentVolumeClaim",
    "configMap",
    "secret",
    "emptyDir",
)


def _volume_kind(value: str) -> VolumeKind:
    if value not in _VOLUME_KINDS:
        raise SpecError("volume.kind", value, f"must be one of {', '.join(_VOLUME_KINDS)}")
    return value  # type: ignore[return-value]  # narrowed by the membership test above


def _volume_mount_path(value: str) -> str:
    return _absolute_path("volume.mount_path", value)


def _volume_sub_path(value: str | None) -> str | None:
    if value is None:
        return None
    sub = _text("volume.sub_path", value)
    # The API server's validateLocalDescendingPath: relative, and never climbing out.
    if not sub or sub.startswith("/") or ".." in sub.split("/"):
        raise SpecError(
            "volume.sub_path", sub, "must be a non-empty relative path without '..' elements"
        )
    return sub


def _volume_size_limit(value: str | None) -> str | None:
    return _quantity("volume.size_limit", value)


@attrs.frozen
class Volume:
    """A volume mounted into the container. Build one with the class methods.

    Volumes are named ``vol-0``, ``vol-1``... in the order the spec lists them (as the seed
    did), so a manifest is stable for a given spec.

    Attributes:
        kind: The Kubernetes volume source (``hostPath``, ``persistentVolumeClaim``,
            ``configMap``, ``secret``, ``emptyDir``).
        source: Host path, claim name, ConfigMap name or Secret name (``None`` for emptyDir).
        mount_path: Absolute path in the container; unique within the spec.
        read_only: Mount read-only.
        sub_path: Mount only this relative path of the volume.
        size_limit: emptyDir only: a memory quantity capping its size.
    """

    kind: VolumeKind = attrs.field(converter=_volume_kind)
    source: str | None
    mount_path: str = attrs.field(converter=_volume_mount_path)
    read_only: bool = attrs.field(default=False, kw_only=True)
    sub_path: str | None = attrs.field(default=None, kw_only=True, converter=_volume_sub_path)
    size_limit: str | None = attrs.field(default=None, kw_only=True, converter=_volume_size_limit)

    def __attrs_post_init__(self) -> None:
        _bool("volume.read_only", self.read_only)
        if self.kind == "emptyDir":
            if self.source is not None:
                raise SpecError("volume.source", self.source, "emptyDir volumes take no source")
        elif self.size_limit is not None:
            raise SpecError("volume.size_limit", self.size_limit, "only emptyDir has a size limit")
        if self.kind == "hostPath":
            _absolute_path("volume.source", self.source)
        elif self.kind != "emptyDir":
            name = _require_str("volume.source", self.source)
            _check("volume.source", name, v.dns1123_subdomain_error(name))

    @classmethod
    def host_path(
        cls, host: str, mount_path: str, *, read_only: bool = False, sub_path: str | None = None
    ) -> Volume:
        """Mount a directory of the node (``hostPath``, type ``Directory``: it must exist).

        Both the baseline and the restricted Pod Security Standards forbid host paths, so a
        spec using one needs ``security=SecurityProfile.NONE``.

        Args:
            host: Absolute directory on the node.
            mount_path: Absolute path in the container.
            read_only: Mount read-only.
            sub_path: Mount only this sub-directory.

        Returns:
            The volume.
        """
        return cls("hostPath", host, mount_path, read_only=read_only, sub_path=sub_path)

    @classmethod
    def pvc(
        cls, claim: str, mount_path: str, *, read_only: bool = False, sub_path: str | None = None
    ) -> Volume:
        """Mount an existing PersistentVolumeClaim (use ReadWriteMany for concurrent pods).

        Args:
            claim: The claim's name.
            mount_path: Absolute path in the container.
            read_only: Mount read-only.
            sub_path: Mount only this sub-directory.

        Returns:
            The volume.
        """
        return cls(
            "persistentVolumeClaim", claim, mount_path, read_only=read_only, sub_path=sub_path
        )

    @classmethod
    def config_map(
        cls, name: str, mount_path: str, *, read_only: bool = True, sub_path: str | None = None
    ) -> Volume:
        """Mount an existing ConfigMap's keys as files (read-only by default).

        Args:
            name: The ConfigMap's name.
            mount_path: Absolute path in the container.
            read_only: Mount read-only.
            sub_path: Mount only this key, as a single file at ``mount_path``.

        Returns:
            The volume.
        """
        return cls("configMap", name, mount_path, read_only=read_only, sub_path=sub_path)

    @classmethod
    def secret(
        cls, name: str, mount_path: str, *, read_only: bool = True, sub_path: str | None = None
    ) -> Volume:
        """Mount an existing Secret's keys as files (read-only by default).

        Args:
            name: The Secret's name.
            mount_path: Absolute path in the container.
            read_only: Mount read-only.
            sub_path: Mount only this key, as a single file at ``mount_path``.

        Returns:
            The volume.
        """
        return cls("secret", name, mount_path, read_only=read_only, sub_path=sub_path)

    @classmethod
    def empty_dir(
        cls,
        mount_path: str,
        size_limit: str | None = None,
        *,
        read_only: bool = False,
        sub_path: str | None = None,
    ) -> Volume:
        """Mount a scratch directory that lives as long as the pod.

        Args:
            mount_path: Absolute path in the container.
            size_limit: Optional cap, e.g. ``"1Gi"``; the pod is evicted above it.
            read_only: Mount read-only.
            sub_path: Mount only this sub-directory.

        Returns:
            The volume.
        """
        return cls(
            "emptyDir",
            None,
            mount_path,
            read_only=read_only,
            sub_path=sub_path,
            size_limit=size_limit,
        )

    def to_manifest(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return the pod ``volumes`` entry and the container ``volumeMounts`` entry.

        Args:
            name: The volume name to use (``vol-<index>``).

        Returns:
            ``(volume, mount)``.
        """
        source: dict[str, Any]
        if self.kind == "hostPath":
            source = {"path": self.source, "type": "Directory"}
        elif self.kind == "persistentVolumeClaim":
            source = {"claimName": self.source}
        elif self.kind == "configMap":
            source = {"name": self.source}
        elif self.kind == "secret":
            source = {"secretName": self.source}
        else:
            # emptyDir must be present even when empty: `{}` is how the API spells the default.
            source = {"sizeLimit": self.size_limit} if self.size_limit else {}
        mount: dict[str, Any] = {"name": name, "mountPath": self.mount_path}
        if self.read_only:
            mount["readOnly"] = True
        if self.sub_path:
            mount["subPath"] = self.sub_path
        return {"name": name, self.kind: source}, mount


# --------------------------------------------------------------------------------------------
# Deadlines and tolerations


def _seconds(field: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, value, f"must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise SpecError(field, value, "must be a positive, finite number of seconds")
    return seconds


def _scheduling(value: float | None) -> float | None:
    return _seconds("deadlines.scheduling", value)


def _start(value: float | None) -> float | None:
    return _seconds("deadlines.start", value)


def _total(value: float | None) -> float | None:
    return _seconds("deadlines.total", value)


@attrs.frozen
class Deadlines:
    """Client-side time budgets for a run, in seconds (``None``: no budget).

    Attributes:
        scheduling: From create until a node is assigned (``Unschedulable`` is raised sooner
            when the scheduler says so).
        start: From create until the container runs; covers scheduling and the image pull.
        total: From create until the container ends; the pod is killed when it runs out.
    """

    scheduling: float | None = attrs.field(default=None, converter=_scheduling)
    start: float | None = attrs.field(default=None, converter=_start)
    total: float | None = attrs.field(default=None, converter=_total)


_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _toleration_key(value: str | None) -> str | None:
    return None if value is None else _require_str("tolerations.key", value)


def _toleration_operator(value: str) -> str:
    return _require_str("tolerations.operator", value)


def _toleration_value(value: str | None) -> str | None:
    return None if value is None else _require_str("tolerations.value", value)


def _toleration_effect(value: str | None) -> str | None:
    return None if value is None else _require_str("tolerations.effect", value)


@attrs.frozen
class Toleration:
    """A pod toleration (lets the pod run on nodes with a matching taint).

    Attributes:
        key: Taint key; ``None`` with ``operator="Exists"`` tolerates every taint.
        operator: ``"Equal"`` (default) or ``"Exists"``.
        value: Taint value to match (``Equal`` only).
        effect: ``NoSchedule``, ``PreferNoSchedule``, ``NoExecute``, or ``None`` for all.
        toleration_seconds: With ``NoExecute``: how long the pod stays after the taint appears.
    """

    key: str | None = attrs.field(default=None, converter=_toleration_key)
    operator: str = attrs.field(default="Equal", converter=_toleration_operator)
    value: str | None = attrs.field(default=None, converter=_toleration_value)
    effect: str | None = attrs.field(default=None, converter=_toleration_effect)
    toleration_seconds: int | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.key:
            _check("tolerations.key", self.key, v.label_key_error(self.key))
        if self.operator not in ("Equal", "Exists"):
            raise SpecError("tolerations.operator", self.operator, "must be 'Equal' or 'Exists'")
        if not self.key and self.operator != "Exists":
            raise SpecError(
                "tolerations.operator", self.operator, "must be 'Exists' when key is empty"
            )
        if self.operator == "Exists" and self.value:
            raise SpecError(
                "tolerations.value", self.value, "must be empty when operator is 'Exists'"
            )
        if self.value:
            _check("tolerations.value", self.value, v.label_value_error(self.value))
        if self.effect is not None and self.effect not in _TOLERATION_EFFECTS:
            raise SpecError(
                "tolerations.effect",
                self.effect,
                f"must be one of {', '.join(_TOLERATION_EFFECTS)}",
            )
        _optional_int(
            "tolerations.toleration_seconds",
            self.toleration_seconds,
            minimum=-(2**63),
            maximum=2**63 - 1,
        )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise SpecError(
                "tolerations.effect",
                self.effect,
                "must be 'NoExecute' when toleration_seconds is set",
            )

    def to_manifest(self) -> dict[str, Any]:
        """Return the pod ``tolerations`` entry."""
        out: dict[str, Any] = {}
        if self.key:
            out["key"] = self.key
        out["operator"] = self.operator
        if self.value:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out


# --------------------------------------------------------------------------------------------
# PodSpec field converters


def _image(value: str) -> str:
    image = _text("image", value)
    _check("image", image, v.image_error(image))
    return image


def _command(value: Iterable[str]) -> tuple[str, ...]:
    argv = _str_tuple("command", value)
    if not argv:
        raise SpecError("command", value, "must hold at least one element (the program)")
    if not argv[0]:
        raise SpecError("command[0]", argv[0], "the program must not be empty")
    for i, arg in enumerate(argv):
        size = _blen(arg)
        if size > MAX_ARG_BYTES:
            raise SpecError(
                f"command[{i}]",
                arg,
                f"is {size} bytes; execve takes at most {MAX_ARG_BYTES} bytes per argument "
                "(MAX_ARG_STRLEN): pass large data in a file (secret_files, a volume) instead",
            )
    return argv


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    name = _require_str("name", value)
    # Stricter than the server (which takes a subdomain): the pod name is also its hostname.
    _check("name", name, v.dns1123_label_error(name))
    return name


def _name_prefix(value: str | None) -> str | None:
    # Any prefix is accepted: generate_pod_name sanitises it into a valid label.
    return None if value is None else _text("name_prefix", value)


def _namespace(value: str | None) -> str | None:
    if value is None:
        return None
    ns = _require_str("namespace", value)
    _check("namespace", ns, v.dns1123_label_error(ns))
    return ns


def _resources(value: Resources | None) -> Resources:
    if value is None:
        return Resources()
    if not isinstance(value, Resources):
        raise SpecError("resources", value, f"must be a Resources, not {kind_of(value)}")
    return value


def _service_account(value: str | None) -> str | None:
    if value is None:
        return None
    sa = _require_str("service_account", value)
    _check("service_account", sa, v.dns1123_subdomain_error(sa))
    return sa


def _restart_policy(value: str) -> str:
    policy = _require_str("restart_policy", value)
    _check("restart_policy", policy, v.restart_policy_error(policy))
    return policy


def _pull_policy(value: ImagePullPolicy | str) -> ImagePullPolicy:
    return _enum(ImagePullPolicy, "image_pull_policy", value)


def _security(value: SecurityProfile | str) -> SecurityProfile:
    return _enum(SecurityProfile, "security", value)


def _env(
    value: Mapping[str, str] | Iterable[EnvVar | tuple[str, str]] | None,
) -> tuple[EnvVar, ...]:
    raw: object = value  # typed loosely on purpose: callers may pass anything at run time
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        items: list[EnvVar] = [EnvVar(_require_str("env", k), v_) for k, v_ in raw.items()]
    elif isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise SpecError("env", raw, "must be a mapping or a sequence of EnvVar")
    else:
        items = []
        for entry in raw:
            if isinstance(entry, EnvVar):
                items.append(entry)
            elif isinstance(entry, tuple) and len(entry) == 2:
                items.append(EnvVar(entry[0], entry[1]))
            else:
                raise SpecError("env", entry, "entries must be EnvVar or (name, value) pairs")
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise SpecError("env", item.name, "duplicate environment variable name")
        seen.add(item.name)
    return tuple(items)


def _blank_env(value: Iterable[str]) -> tuple[str, ...]:
    names = _str_tuple("blank_env", value)
    for name in names:
        _check("blank_env", name, v.env_name_error(name))
    return tuple(dict.fromkeys(names))  # de-duplicated, order kept


def _secret_mapping(field: str, value: object) -> Mapping[Any, Any]:
    # Never echo a secret-bearing value of the wrong shape: a list of (name, value) pairs, a
    # string... holds the secret itself. Only its type is named.
    if not isinstance(value, Mapping):
        raise SpecError(
            field, REDACTED, f"must be a mapping of names to values, not {kind_of(value)}"
        )
    return value


def _secret_env_name(field: str, name: object) -> str:
    if not isinstance(name, str):
        raise SpecError(field, REDACTED, f"names must be strings, not {kind_of(name)}")
    if "=" in name:
        # "TOKEN=sk-..." as a name: whatever follows "=" may be the secret itself.
        shown = name.partition("=")[0] + "=" + REDACTED
        raise SpecError(field, shown, "must be a variable name, without '=' and a value")
    _clean(field, name)
    _check(field, name, v.env_name_error(name))
    return name


def _secret_item(field: str, item: object, *, allow_nul: bool) -> str | SecretRef:
    if isinstance(item, SecretRef):
        return item
    if not isinstance(item, str):
        raise SpecError(field, REDACTED, f"must be a str or a SecretRef, not {kind_of(item)}")
    # A file's content may hold NUL bytes (it travels base64-encoded); an env value may not.
    return _clean(field, item, secret=True, allow_nul=allow_nul)


def _secret_env(value: Mapping[str, str | SecretRef] | None) -> SecretMap[str | SecretRef]:
    if value is None:
        return SecretMap()
    items = _secret_mapping("secret_env", value)
    for name, item in items.items():
        _secret_env_name("secret_env", name)
        _secret_item(f"secret_env[{name}]", item, allow_nul=False)
    return items if isinstance(items, SecretMap) else SecretMap(items)


def _secret_files(value: Mapping[str, str | SecretRef] | None) -> SecretMap[str | SecretRef]:
    if value is None:
        return SecretMap()
    items = _secret_mapping("secret_files", value)
    for path, item in items.items():
        if not isinstance(path, str):
            raise SpecError("secret_files", REDACTED, f"paths must be strings, not {kind_of(path)}")
        _absolute_path("secret_files", path)
        if path.endswith("/"):
            raise SpecError("secret_files", path, "must be a file path, not a directory")
        _secret_item(f"secret_files[{path}]", item, allow_nul=True)
    return items if isinstance(items, SecretMap) else SecretMap(items)


def _redacted_repr(value: Mapping[str, object]) -> str:
    shown = {k: (item if isinstance(item, SecretRef) else REDACTED) for k, item in value.items()}
    return repr(shown)


def _pull_secrets(value: Iterable[str]) -> tuple[str, ...]:
    names = _str_tuple("image_pull_secrets", value)
    for name in names:
        _check("image_pull_secrets", name, v.dns1123_subdomain_error(name))
    return names


def _labels(value: Mapping[str, str] | None) -> FrozenMap[str]:
    labels = _str_map("labels", {} if value is None else value)
    for key, item in labels.items():
        if key in RESERVED_LABEL_KEYS:
            raise SpecError(
                "labels", key, "is reserved: podrunner sets it on every object it creates"
            )
        _check("labels", key, v.label_key_error(key))
        _check(f"labels[{key}]", item, v.label_value_error(item))
    return labels


def _annotations(value: Mapping[str, str] | None) -> FrozenMap[str]:
    annotations = _str_map("annotations", {} if value is None else value)
    for key in annotations:
        if key in RESERVED_ANNOTATION_KEYS:
            raise SpecError(
                "annotations", key, "is reserved: podrunner sets it on every object it creates"
            )
        _check("annotations", key, v.annotation_key_error(key))
    # The runner adds its own annotations to what is given here: keep room for them.
    limit = v.TOTAL_ANNOTATION_SIZE_LIMIT - RESERVED_ANNOTATION_BYTES
    size = sum(_blen(k) + _blen(x) for k, x in annotations.items())
    if size > limit:
        raise SpecError(
            "annotations",
            annotations,
            f"keys and values total {size} bytes; at most {limit} are allowed (the API "
            f"server's {v.TOTAL_ANNOTATION_SIZE_LIMIT}, less {RESERVED_ANNOTATION_BYTES} "
            "kept for podrunner's own annotations)",
        )
    return annotations


def _volumes(value: Iterable[Volume]) -> tuple[Volume, ...]:
    if isinstance(value, Volume):
        value = (value,)
    if not isinstance(value, Iterable):
        raise SpecError("volumes", value, "must be a sequence of Volume")
    volumes = tuple(value)
    for volume in volumes:
        if not isinstance(volume, Volume):
            raise SpecError(
                "volumes", volume, f"must be a sequence of Volume, not {kind_of(volume)}"
            )
    return volumes


def _working_dir(value: str | None) -> str | None:
    return None if value is None else _absolute_path("working_dir", value)


def _node_selector(value: Mapping[str, str] | None) -> FrozenMap[str]:
    selector = _str_map("node_selector", {} if value is None else value)
    for key, item in selector.items():
        _check("node_selector", key, v.label_key_error(key))
        _check(f"node_selector[{key}]", item, v.label_value_error(item))
    return selector


def _tolerations(value: Iterable[Toleration]) -> tuple[Toleration, ...]:
    if not isinstance(value, Iterable):
        raise SpecError("tolerations", value, "must be a sequence of Toleration")
    items = tuple(value)
    for item in items:
        if not isinstance(item, Toleration):
            raise SpecError(
                "tolerations", item, f"must be a sequence of Toleration, not {kind_of(item)}"
            )
    return items


def _active_deadline(value: int | None) -> int | None:
    return _optional_int("active_deadline_seconds", value, minimum=1, maximum=2**63 - 1)


def _container_name(value: str) -> str:
    name = _require_str("container_name", value)
    _check("container_name", name, v.container_name_error(name))
    return name


def _component(value: str) -> str:
    component = _require_str("component", value)
    if not component:
        raise SpecError("component", component, "must be non-empty")
    _check("component", component, v.label_value_error(component))
    return component


def _run_as_user(value: int | None) -> int | None:
    return _optional_int("run_as_user", value, minimum=0, maximum=_MAX_ID)


def _run_as_group(value: int | None) -> int | None:
    return _optional_int("run_as_group", value, minimum=0, maximum=_MAX_ID)


def _fs_group(value: int | None) -> int | None:
    return _optional_int("fs_group", value, minimum=0, maximum=_MAX_ID)


def _read_only_root(value: bool) -> bool:
    return _bool("read_only_root_filesystem", value)


def _automount(value: bool) -> bool:
    return _bool("automount_service_account_token", value)


def _stdin(value: bool) -> bool:
    return _bool("stdin", value)


def _arg_rule(size: int, what: str) -> str:
    return (
        f"{what} is {size} bytes; execve takes at most {MAX_ARG_BYTES} bytes per string "
        "(MAX_ARG_STRLEN): pass large data in a file (secret_files, a volume) instead"
    )


# --------------------------------------------------------------------------------------------
# PodSpec


@attrs.frozen
class PodSpec:
    """One pod, described once: image, argv and everything around them.

    ``image`` and ``command`` are positional; everything else is keyword-only. The object is
    immutable and validated on construction; ``with_*`` methods return re-validated copies.

    Attributes:
        image: Container image reference.
        command: The container's argv (``command`` in Kubernetes terms; no shell is implied).
        name: Exact pod name (a DNS-1123 label). Default: generated from ``name_prefix``.
        name_prefix: Start of a generated name; sanitised, never rejected.
        namespace: Namespace; default: the runner's.
        resources: CPU and memory limits and requests.
        service_account: Service account name.
        restart_policy: ``"Never"`` (default), ``"OnFailure"`` or ``"Always"``.
        image_pull_policy: When to pull the image.
        env: Plain variables, in order; a mapping or :class:`EnvVar` items.
        blank_env: Names set to ``""`` (blanks variables the image or launcher sets); an
            ``env`` or ``secret_env`` entry of the same name wins.
        secret_env: Name -> value (stored in a per-run Secret) or :class:`SecretRef`.
        secret_files: Absolute file path -> content (per-run Secret) or :class:`SecretRef`,
            mounted read-only, mode 0400.
        image_pull_secrets: Names of existing registry Secrets.
        labels: Extra pod labels; the managed keys are reserved.
        annotations: Pod annotations.
        volumes: Volumes, mounted in order as ``vol-0``, ``vol-1``...
        working_dir: Absolute working directory of the container.
        node_selector: Node labels the pod requires.
        tolerations: Taints the pod tolerates.
        active_deadline_seconds: Server-side kill after this many seconds, even if the client
            is gone.
        container_name: The container's name (``"main"``; ``"claude-code"`` for Claude).
        component: Value of the ``app.kubernetes.io/component`` label.
        security: The Pod Security Standard to meet.
        run_as_user: UID; with ``RESTRICTED`` the default is 65532.
        run_as_group: GID.
        fs_group: Group owning mounted volumes.
        read_only_root_filesystem: Mount the image's filesystem read-only.
        automount_service_account_token: Mount the service account token (off by default).
        stdin: Keep the container's stdin open for an attach.
    """

    image: str = attrs.field(converter=_image)
    command: tuple[str, ...] = attrs.field(converter=_command)
    name: str | None = attrs.field(default=None, kw_only=True, converter=_name)
    name_prefix: str | None = attrs.field(default=None, kw_only=True, converter=_name_prefix)
    namespace: str | None = attrs.field(default=None, kw_only=True, converter=_namespace)
    resources: Resources = attrs.field(factory=Resources, kw_only=True, converter=_resources)
    service_account: str | None = attrs.field(
        default=None, kw_only=True, converter=_service_account
    )
    restart_policy: str = attrs.field(default="Never", kw_only=True, converter=_restart_policy)
    image_pull_policy: ImagePullPolicy = attrs.field(
        default=ImagePullPolicy.IF_NOT_PRESENT, kw_only=True, converter=_pull_policy
    )
    env: tuple[EnvVar, ...] = attrs.field(default=(), kw_only=True, converter=_env)
    blank_env: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_blank_env)
    secret_env: FrozenMap[str | SecretRef] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_secret_env, repr=_redacted_repr
    )
    secret_files: FrozenMap[str | SecretRef] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_secret_files, repr=_redacted_repr
    )
    image_pull_secrets: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_pull_secrets
    )
    labels: FrozenMap[str] = attrs.field(factory=FrozenMap, kw_only=True, converter=_labels)
    annotations: FrozenMap[str] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_annotations
    )
    volumes: tuple[Volume, ...] = attrs.field(default=(), kw_only=True, converter=_volumes)
    working_dir: str | None = attrs.field(default=None, kw_only=True, converter=_working_dir)
    node_selector: FrozenMap[str] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_node_selector
    )
    tolerations: tuple[Toleration, ...] = attrs.field(
        default=(), kw_only=True, converter=_tolerations
    )
    active_deadline_seconds: int | None = attrs.field(
        default=None, kw_only=True, converter=_active_deadline
    )
    container_name: str = attrs.field(default="main", kw_only=True, converter=_container_name)
    component: str = attrs.field(default="runner", kw_only=True, converter=_component)
    security: SecurityProfile = attrs.field(
        default=SecurityProfile.RESTRICTED, kw_only=True, converter=_security
    )
    run_as_user: int | None = attrs.field(default=None, kw_only=True, converter=_run_as_user)
    run_as_group: int | None = attrs.field(default=None, kw_only=True, converter=_run_as_group)
    fs_group: int | None = attrs.field(default=None, kw_only=True, converter=_fs_group)
    read_only_root_filesystem: bool = attrs.field(
        default=False, kw_only=True, converter=_read_only_root
    )
    automount_service_account_token: bool = attrs.field(
        default=False, kw_only=True, converter=_automount
    )
    stdin: bool = attrs.field(default=False, kw_only=True, converter=_stdin)

    def __attrs_post_init__(self) -> None:
        if self.name is not None and self.name_prefix is not None:
            raise SpecError("name_prefix", self.name_prefix, "give either name or name_prefix")
        explicit = {e.name for e in self.env}
        for name in self.secret_env:
            if name in explicit:
                raise SpecError(
                    "secret_env", name, "is also set in env; give each variable one source"
                )
        mount_paths: dict[str, str] = {}
        for i, volume in enumerate(self.volumes):
            self._claim_mount(mount_paths, volume.mount_path, f"volumes[{i}].mount_path")
            if volume.kind == "hostPath" and self.security is not SecurityProfile.NONE:
                raise SpecError(
                    f"volumes[{i}]",
                    volume.source,
                    "hostPath volumes are forbidden by the baseline and restricted Pod "
                    "Security Standards; pass security=SecurityProfile.NONE to opt out",
                )
        for path in self.secret_files:
            self._claim_mount(mount_paths, path, "secret_files")
        if self.security is SecurityProfile.RESTRICTED and self.run_as_user == 0:
            raise SpecError(
                "run_as_user",
                0,
                "the restricted Pod Security Standard requires a non-root user (runAsNonRoot)",
            )
        self._check_sizes()

    def _check_sizes(self) -> None:
        """Refuse what the kernel, the API server or etcd would refuse later, by size."""
        # The container's environment, as execve gets it: "NAME=value" strings.
        exec_total = sum(_blen(arg) + 1 for arg in self.command)
        for name in self.blank_env:
            exec_total += _blen(name) + 2
        for env in self.env:
            entry = _blen(env.name) + 1 + _blen(env.value or "")
            if entry > MAX_ARG_BYTES:
                raise SpecError(f"env[{env.name}]", env.value, _arg_rule(entry, "NAME=value"))
            exec_total += entry + 1
        secret_sizes = {"secret_env": 0, "secret_files": 0}
        for name, item in self.secret_env.items():
            size = 0 if isinstance(item, SecretRef) else _blen(item)
            entry = _blen(name) + 1 + size
            if entry > MAX_ARG_BYTES:
                raise SpecError(f"secret_env[{name}]", REDACTED, _arg_rule(entry, "NAME=value"))
            exec_total += entry + 1
            secret_sizes["secret_env"] += size
        for content in self.secret_files.values():
            if not isinstance(content, SecretRef):
                secret_sizes["secret_files"] += _blen(content)
        secret_total = sum(secret_sizes.values())
        if secret_total > v.SECRET_DATA_SIZE_LIMIT:
            field = max(secret_sizes, key=lambda k: secret_sizes[k])
            raise SpecError(
                field,
                REDACTED,
                f"the per-run Secret would hold {secret_total} bytes of data; the API server "
                f"takes at most {v.SECRET_DATA_SIZE_LIMIT} (1 MiB) in one Secret: put larger "
                "data in an existing Secret (SecretRef) or a volume",
            )
        parts = {
            "image": _blen(self.image),
            "command": sum(_blen(arg) for arg in self.command),
            "env": sum(_blen(e.name) + _blen(e.value or "") for e in self.env)
            + sum(_blen(name) for name in (*self.blank_env, *self.secret_env)),
            "labels": sum(_blen(k) + _blen(x) for k, x in self.labels.items()),
            "annotations": sum(_blen(k) + _blen(x) for k, x in self.annotations.items()),
            "node_selector": sum(_blen(k) + _blen(x) for k, x in self.node_selector.items()),
            "secret_files": sum(_blen(path) for path in self.secret_files),
        }
        pod_total = sum(parts.values())
        if pod_total > MAX_POD_CONTENT_BYTES:
            field = max(parts, key=lambda k: parts[k])
            raise SpecError(
                field,
                REDACTED if field == "secret_files" else getattr(self, field),
                f"the pod's text totals {pod_total} bytes ({field}: {parts[field]}); one pod "
                f"may hold at most {MAX_POD_CONTENT_BYTES} (etcd refuses objects over 1.5 "
                "MiB): pass large data in a file (secret_files, a volume) instead",
            )
        if exec_total > MAX_EXEC_BYTES:
            raise SpecError(
                "command",
                self.command,
                f"the argv and environment total {exec_total} bytes; execve takes at most "
                f"{MAX_EXEC_BYTES} (ARG_MAX, less room for the image's own variables)",
            )

    @staticmethod
    def _claim_mount(seen: dict[str, str], path: str, field: str) -> None:
        key = posixpath.normpath(path)
        if key in seen:
            raise SpecError(field, path, f"mount path already used by {seen[key]}")
        seen[key] = field

    # -- copies --------------------------------------------------------------------------------

    def replace(self, **changes: Any) -> PodSpec:
        """Return a re-validated copy with the given fields replaced (``attrs.evolve``).

        Args:
            **changes: Field names and their new values.

        Returns:
            The new spec.
        """
        return attrs.evolve(self, **changes)

    def with_image(self, image: str) -> PodSpec:
        """Return a copy running another image."""
        return attrs.evolve(self, image=image)

    def with_command(self, *argv: str) -> PodSpec:
        """Return a copy with another argv: ``with_command("sh", "-c", "echo hi")``."""
        return attrs.evolve(self, command=argv)

    def with_name(self, name: str | None = None, *, prefix: str | None = None) -> PodSpec:
        """Return a copy with an exact pod name, or a name prefix (one of the two)."""
        return attrs.evolve(self, name=name, name_prefix=prefix)

    def with_namespace(self, namespace: str | None) -> PodSpec:
        """Return a copy in another namespace."""
        return attrs.evolve(self, namespace=namespace)

    def with_labels(self, labels: Mapping[str, str] | None = None, **more: str) -> PodSpec:
        """Return a copy with these labels added (same keys replaced)."""
        return attrs.evolve(self, labels={**self.labels, **(labels or {}), **more})

    def with_annotations(
        self, annotations: Mapping[str, str] | None = None, **more: str
    ) -> PodSpec:
        """Return a copy with these annotations added (same keys replaced)."""
        return attrs.evolve(self, annotations={**self.annotations, **(annotations or {}), **more})

    def with_env(self, env: Mapping[str, str] | None = None, **more: str) -> PodSpec:
        """Return a copy with these plain variables set (an existing name takes the new value)."""
        updates = {**(env or {}), **more}
        kept = [e for e in self.env if e.name not in updates]
        return attrs.evolve(self, env=(*kept, *(EnvVar(k, x) for k, x in updates.items())))

    def with_env_vars(self, *env: EnvVar) -> PodSpec:
        """Return a copy with these :class:`EnvVar` entries set (replacing same names)."""
        names = {e.name for e in env}
        return attrs.evolve(self, env=(*(e for e in self.env if e.name not in names), *env))

    def with_blank_env(self, *names: str) -> PodSpec:
        """Return a copy that also blanks these variables."""
        return attrs.evolve(self, blank_env=(*self.blank_env, *names))

    def with_secret_env(
        self, secret_env: Mapping[str, str | SecretRef] | None = None, **more: str | SecretRef
    ) -> PodSpec:
        """Return a copy with these secret variables added (same names replaced)."""
        return attrs.evolve(self, secret_env={**self.secret_env, **(secret_env or {}), **more})

    def with_secret_files(self, files: Mapping[str, str | SecretRef]) -> PodSpec:
        """Return a copy with these secret files added (same paths replaced)."""
        return attrs.evolve(self, secret_files={**self.secret_files, **files})

    def with_resources(self, resources: Resources | None = None, **changes: Any) -> PodSpec:
        """Return a copy with other resources: a whole :class:`Resources`, or fields of it.

        ``spec.with_resources(cpu_limit="500m")`` keeps the other values.
        """
        base = resources if resources is not None else self.resources
        return attrs.evolve(self, resources=attrs.evolve(base, **changes))

    def with_volumes(self, *volumes: Volume) -> PodSpec:
        """Return a copy with these volumes appended."""
        return attrs.evolve(self, volumes=(*self.volumes, *volumes))

    def with_tolerations(self, *tolerations: Toleration) -> PodSpec:
        """Return a copy with these tolerations appended."""
        return attrs.evolve(self, tolerations=(*self.tolerations, *tolerations))

    def with_node_selector(self, selector: Mapping[str, str] | None = None, **more: str) -> PodSpec:
        """Return a copy with these node-selector entries added."""
        return attrs.evolve(self, node_selector={**self.node_selector, **(selector or {}), **more})

    def with_image_pull_secrets(self, *names: str) -> PodSpec:
        """Return a copy with these registry Secrets appended."""
        return attrs.evolve(self, image_pull_secrets=(*self.image_pull_secrets, *names))

    def with_security(self, security: SecurityProfile | str) -> PodSpec:
        """Return a copy built for another Pod Security Standard."""
        return attrs.evolve(self, security=security)
