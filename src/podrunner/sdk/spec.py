"""The pod spec builder: frozen attrs value objects, validated on construction.

A :class:`PodSpec` describes one pod once, in Python. Every field is checked when the object is
built, so a bad value raises :class:`~podrunner.errors.SpecError` (field, value, rule) long
before anything reaches a cluster. Specs are immutable: the ``with_*`` methods return
re-validated copies made with :func:`attrs.evolve`.

Design notes:

* ``attrs.evolve`` feeds every unchanged, already-converted value back through the converters,
  so converters here are idempotent (a tuple stays the same tuple, a :class:`FrozenMap` the
  same map) and never generate names or random values. Names and run ids are made when the
  manifest is built (:mod:`podrunner.sdk.manifest`).
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
from podrunner.errors import SpecError

__all__ = [
    "RESERVED_LABEL_KEYS",
    "CleanupPolicy",
    "Deadlines",
    "EnvVar",
    "FrozenMap",
    "ImagePullPolicy",
    "PodSpec",
    "Resources",
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

_MAX_ID = 2**31 - 1  # libcontainer's UID/GID range, which the API server enforces
_REDACTED = "<redacted>"

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


# --------------------------------------------------------------------------------------------
# Converter and validator helpers (each raises SpecError naming the field)


def _check(field: str, value: object, error: str | None) -> None:
    if error is not None:
        raise SpecError(field, value, error)


def _require_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise SpecError(field, value, f"must be a string, not {type(value).__name__}")
    return value


def _str_tuple(field: str, value: object) -> tuple[str, ...]:
    # A bare string is iterable too; as an argv or a name list it is almost always a mistake.
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SpecError(field, value, "must be a sequence of strings, not a single string")
    items = tuple(value)
    for item in items:
        _require_str(field, item)
    return items


def _mapping(field: str, value: object) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(field, value, f"must be a mapping, not {type(value).__name__}")
    return value


def _str_map(field: str, value: object) -> FrozenMap[str]:
    items = _mapping(field, value)
    for key, item in items.items():
        _require_str(field, key)
        _require_str(f"{field}[{key}]", item)
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
        raise SpecError(field, value, f"must be an integer, not {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise SpecError(field, value, f"must be between {minimum} and {maximum}, inclusive")
    return value


def _absolute_path(field: str, value: object) -> str:
    path = _require_str(field, value)
    if not path.startswith("/"):
        raise SpecError(field, path, "must be an absolute path (start with '/')")
    if "\x00" in path:
        raise SpecError(field, path, "must not contain NUL characters")
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
        raise SpecError(field, value, f"must be True or False, not {type(value).__name__}")
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
    return None if value is None else _require_str("env.value", value)


def _env_secret_ref(value: SecretRef | None) -> SecretRef | None:
    if value is not None and not isinstance(value, SecretRef):
        raise SpecError("env.secret_ref", value, "must be a SecretRef")
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
    sub = _require_str("volume.sub_path", value)
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
                "tolerations.effect", self.effect, f"must be one of {_TOLERATION_EFFECTS}"
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
    image = _require_str("image", value)
    _check("image", image, v.image_error(image))
    return image


def _command(value: Iterable[str]) -> tuple[str, ...]:
    argv = _str_tuple("command", value)
    if not argv:
        raise SpecError("command", value, "must hold at least one element (the program)")
    for i, arg in enumerate(argv):
        if not arg and i == 0:
            raise SpecError("command[0]", arg, "the program must not be empty")
        if "\x00" in arg:
            raise SpecError(f"command[{i}]", arg, "must not contain NUL characters")
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
    return None if value is None else _require_str("name_prefix", value)


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
        raise SpecError("resources", value, "must be a Resources")
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


def _secret_env(value: Mapping[str, str | SecretRef] | None) -> FrozenMap[str | SecretRef]:
    if value is None:
        return FrozenMap()
    items = _mapping("secret_env", value)
    for name, item in items.items():
        _require_str("secret_env", name)
        _check("secret_env", name, v.env_name_error(name))
        if not isinstance(item, (str, SecretRef)):
            # Never echo the value: it may be a secret of the wrong type.
            raise SpecError(f"secret_env[{name}]", _REDACTED, "must be a str or a SecretRef")
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


def _secret_files(value: Mapping[str, str | SecretRef] | None) -> FrozenMap[str | SecretRef]:
    if value is None:
        return FrozenMap()
    items = _mapping("secret_files", value)
    for path, item in items.items():
        _absolute_path("secret_files", path)
        if path.endswith("/"):
            raise SpecError("secret_files", path, "must be a file path, not a directory")
        if not isinstance(item, (str, SecretRef)):
            raise SpecError(f"secret_files[{path}]", _REDACTED, "must be a str or a SecretRef")
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


def _redacted_repr(value: Mapping[str, object]) -> str:
    shown = {k: (item if isinstance(item, SecretRef) else _REDACTED) for k, item in value.items()}
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
        _check("annotations", key, v.annotation_key_error(key))
    size_error = v.annotations_size_error(annotations)
    if size_error:
        raise SpecError("annotations", f"<{len(annotations)} annotations>", size_error)
    return annotations


def _volumes(value: Iterable[Volume]) -> tuple[Volume, ...]:
    if isinstance(value, Volume):
        value = (value,)
    if not isinstance(value, Iterable):
        raise SpecError("volumes", value, "must be a sequence of Volume")
    volumes = tuple(value)
    for volume in volumes:
        if not isinstance(volume, Volume):
            raise SpecError("volumes", volume, "must be a sequence of Volume")
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
            raise SpecError("tolerations", item, "must be a sequence of Toleration")
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
