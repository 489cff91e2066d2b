"""The spec's value types: enums, Resources, SecretRef, EnvVar, Volume, Deadlines, Toleration."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, Literal

import attrs

from podrunner import _validation as v
from podrunner.errors import SpecError, kind_of
from podrunner.spec._fields import (
    FrozenMap,
    SecretRef,
    _absolute_path,
    _bool,
    _check,
    _mapping,
    _optional_int,
    _quantity,
    _require_str,
    _text,
)

__all__ = [
    "CleanupPolicy",
    "Deadlines",
    "EnvVar",
    "ImagePullPolicy",
    "Resources",
    "SecretRef",
    "SecurityProfile",
    "Toleration",
    "Volume",
    "VolumeKind",
]


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


def _extended(value: object) -> FrozenMap[str]:
    items = _mapping("resources.extended", {} if value is None else value)
    out: dict[str, str] = {}
    for name, amount in items.items():
        field = f"resources.extended[{name}]"
        _require_str("resources.extended", name)
        _check("resources.extended", name, v.resource_name_error(name))
        if "/" not in name or name.startswith("kubernetes.io/"):
            raise SpecError(
                "resources.extended",
                name,
                "must be an extended resource: a domain-qualified name outside kubernetes.io "
                "(e.g. 'nvidia.com/gpu'); set cpu and memory with the other fields",
            )
        quantity = _quantity(field, amount)
        if quantity is None:
            raise SpecError(field, amount, "must be a whole amount, such as 1 or '2'")
        # The server does not overcommit extended resources: whole units only.
        if v.parse_quantity(quantity) % 1 != 0:
            raise SpecError(field, quantity, "must be an integer")
        out[name] = quantity
    if isinstance(value, FrozenMap) and out == dict(value.items()):
        return value  # idempotent under attrs.evolve
    return FrozenMap(out)


@attrs.frozen
class Resources:
    """CPU and memory limits and requests, as Kubernetes quantities; extended resources.

    CPU is in cores (``"500m"``, ``"2"``), memory in bytes (``"512Mi"``, ``"1.5Gi"``,
    ``"1e9"``). Numbers are accepted and turned into strings. A request above its limit is
    rejected, as the API server would. Empty ``Resources()`` sets nothing (the namespace's
    defaults apply).

    Extended resources (``extended={"nvidia.com/gpu": 1}``) are whole units the server never
    overcommits: each amount must be an integer and becomes both the limit and the request
    (the server requires them equal), so one number says it.

    Attributes:
        cpu_limit: CPU limit.
        memory_limit: Memory limit; the container is OOM-killed above it.
        cpu_request: CPU the scheduler reserves.
        memory_request: Memory the scheduler reserves.
        extended: Extended resource name (a domain-qualified name such as
            ``nvidia.com/gpu``) -> whole amount, set as both limit and request.
    """

    cpu_limit: str | None = attrs.field(default=None, converter=_cpu_limit)
    memory_limit: str | None = attrs.field(default=None, converter=_memory_limit)
    cpu_request: str | None = attrs.field(default=None, converter=_cpu_request)
    memory_request: str | None = attrs.field(default=None, converter=_memory_request)
    extended: FrozenMap[str] = attrs.field(factory=FrozenMap, kw_only=True, converter=_extended)

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
        limits.update(self.extended)
        requests.update(self.extended)
        if limits:
            out["limits"] = limits
        if requests:
            out["requests"] = requests
        return out


# --------------------------------------------------------------------------------------------
# Secrets and environment


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

    Volumes are named ``vol-0``, ``vol-1``... in the order the spec lists them,
    so a manifest is stable for a given spec.

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


def _autoscaler_grace(value: float) -> float:
    field = "deadlines.autoscaler_grace"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, value, f"must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise SpecError(field, value, "must be a finite number of seconds, 0 or more")
    return seconds


@attrs.frozen
class Deadlines:
    """Client-side time budgets for a run, in seconds (``None``: no budget).

    Attributes:
        scheduling: From create until a node is assigned (``Unschedulable`` is raised sooner
            when the scheduler says so and no autoscaler is bringing a node).
        start: From create until the container runs; covers scheduling and the image pull.
        total: From create until the container ends; the pod is killed when it runs out.
        autoscaler_grace: How long a pod the scheduler refuses waits for a cluster autoscaler
            to speak before ``Unschedulable`` is raised: a ``TriggeredScaleUp``
            (cluster-autoscaler) or ``Nominated`` (Karpenter) event makes the run wait for
            the new node, within the other budgets; ``NotTriggerScaleUp`` or silence fails
            it. 0 fails at the scheduler's first refusal.
    """

    scheduling: float | None = attrs.field(default=None, converter=_scheduling)
    start: float | None = attrs.field(default=None, converter=_start)
    total: float | None = attrs.field(default=None, converter=_total)
    autoscaler_grace: float = attrs.field(default=15.0, kw_only=True, converter=_autoscaler_grace)


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


def env_vars(
    value: Mapping[str, str] | Iterable[EnvVar | tuple[str, str]] | None,
) -> tuple[EnvVar, ...]:
    """An ``env`` argument as EnvVar items: a mapping, or EnvVar / ``(name, value)`` items."""
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
