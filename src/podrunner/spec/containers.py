"""Init containers and native sidecars of a :class:`~podrunner.spec.PodSpec`: validated values.

An :class:`InitContainer` runs to completion before the main container starts (a checkout, a
download); a :class:`Sidecar` (a Kubernetes >= 1.29 native sidecar: an init container with
``restartPolicy: Always``) starts before them and keeps running beside the main container
until it ends. Each is checked on construction with the main container's rules (image, argv,
environment, resources, working directory); :func:`check_containers` adds the rules that need
the whole pod (unique names, room in the pod), with field paths such as
``init_containers[0].name``.

What they share with the main container: the pod's security context, the container security
defaults of its profile, its image pull policy and its ``volumes`` (mounted at the same
paths, so a workspace an init container fills is what the main container sees). What they
never get: ``secret_env``, ``secret_files`` and ``files``, which belong to the main container
alone (an init container that needs a credential names it with
``EnvVar(..., secret_ref=SecretRef(...))``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol

import attrs

from podrunner import _validation as v
from podrunner.errors import SpecError, kind_of
from podrunner.spec._fields import _absolute_path, _blen, _check, _str_tuple, _text
from podrunner.spec.sizes import MAX_ARG_BYTES, MAX_EXEC_BYTES, MAX_POD_CONTENT_BYTES
from podrunner.spec.values import EnvVar, Resources, env_vars

__all__ = ["InitContainer", "Sidecar", "check_containers"]

_MAX_ARG = MAX_ARG_BYTES
_MAX_EXEC = MAX_EXEC_BYTES
_MAX_POD_TEXT = MAX_POD_CONTENT_BYTES


def _name(value: str) -> str:
    name = _text("name", value)
    _check("name", name, v.container_name_error(name))
    return name


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
        if _blen(arg) > _MAX_ARG:
            raise SpecError(
                f"command[{i}]",
                arg,
                f"is {_blen(arg)} bytes; execve takes at most {_MAX_ARG} bytes per argument "
                "(MAX_ARG_STRLEN): pass large data in a volume instead",
            )
    return argv


def _resources(value: Resources | None) -> Resources:
    if value is None:
        return Resources()
    if not isinstance(value, Resources):
        raise SpecError("resources", value, f"must be a Resources, not {kind_of(value)}")
    return value


def _working_dir(value: str | None) -> str | None:
    return None if value is None else _absolute_path("working_dir", value)


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    # Only the shape is taken here; the rules run in __attrs_post_init__, which knows the
    # container's kind and so names the field in full ("init_container.command").
    raw: object = value  # typed loosely on purpose: callers may pass anything at run time
    if isinstance(raw, Iterable) and not isinstance(raw, (str, bytes, Mapping)):
        return tuple(raw)
    return raw  # type: ignore[return-value]  # refused by the check that follows


def _env_shape(
    value: Mapping[str, str] | Iterable[EnvVar | tuple[str, str]] | None,
) -> tuple[EnvVar, ...]:
    if value is None or isinstance(value, Mapping):
        return value  # type: ignore[return-value]  # converted by the check that follows
    return _tuple(value)


@attrs.frozen
class _Container:
    """The fields an init container and a sidecar share (see the subclasses)."""

    _field: ClassVar[str] = "container"

    name: str
    image: str = attrs.field(kw_only=True)
    command: tuple[str, ...] = attrs.field(kw_only=True, converter=_tuple)
    env: tuple[EnvVar, ...] = attrs.field(default=(), kw_only=True, converter=_env_shape)
    resources: Resources = attrs.field(factory=Resources, kw_only=True)
    working_dir: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        checks = (
            ("name", _name),
            ("image", _image),
            ("command", _command),
            ("env", env_vars),
            ("resources", _resources),
            ("working_dir", _working_dir),
        )
        try:
            for attribute, check in checks:
                # Idempotent checks: attrs.evolve feeds checked values back through them.
                object.__setattr__(self, attribute, check(getattr(self, attribute)))
            self._check_exec_size()
        except SpecError as exc:
            raise SpecError(f"{self._field}.{exc.field}", exc.value, exc.rule) from None

    def _check_exec_size(self) -> None:
        # execve's limits, as for the main container: argv and "NAME=value" strings.
        total = sum(_blen(arg) + 1 for arg in self.command)
        for env in self.env:
            entry = _blen(env.name) + 1 + _blen(env.value or "")
            if entry > _MAX_ARG:
                raise SpecError(
                    f"env[{env.name}]",
                    env.value,
                    f"NAME=value is {entry} bytes; execve takes at most {_MAX_ARG} per string",
                )
            total += entry + 1
        if total > _MAX_EXEC:
            raise SpecError(
                "command",
                self.command,
                f"the argv and environment total {total} bytes; execve takes at most "
                f"{_MAX_EXEC} (ARG_MAX, less room for the image's own variables)",
            )

    def text_bytes(self) -> int:
        """Bytes of text this container adds to the pod object (name, image, argv, env)."""
        env = sum(_blen(e.name) + _blen(e.value or "") for e in self.env)
        return _blen(self.name) + _blen(self.image) + sum(map(_blen, self.command)) + env


@attrs.frozen
class InitContainer(_Container):
    """A container that runs to completion, in order, before the main container starts.

    ``InitContainer("fetch", image="alpine/git:2.45.2", command=["git", "clone", ...])``.
    A non-zero exit fails the run with :class:`~podrunner.errors.InitContainerFailed` (the
    main container never starts). It mounts the pod's ``volumes`` at their paths, never the
    main container's ``secret_env``, ``secret_files`` or ``files``.

    Attributes:
        name: Container name (a DNS-1123 label), unique in the pod.
        image: Container image reference.
        command: Its argv (no shell is implied).
        env: Plain variables, in order; a mapping or :class:`EnvVar` items.
        resources: CPU and memory limits and requests.
        working_dir: Absolute working directory.
    """

    _field: ClassVar[str] = "init_container"


@attrs.frozen
class Sidecar(_Container):
    """A native sidecar (Kubernetes >= 1.29): started first, kept running beside the main one.

    Rendered as an init container with ``restartPolicy: Always``, before the plain init
    containers, so they can use it too. The kubelet restarts it if it exits and stops it once
    the main container has ended; the run's result is the main container's alone. It mounts
    the pod's ``volumes``, never the main container's secrets or files.

    Attributes:
        name: Container name (a DNS-1123 label), unique in the pod.
        image: Container image reference.
        command: Its argv (no shell is implied).
        env: Plain variables, in order; a mapping or :class:`EnvVar` items.
        resources: CPU and memory limits and requests.
        working_dir: Absolute working directory.
    """

    _field: ClassVar[str] = "sidecar"


def _items(field: str, cls: type[_Container], value: object) -> tuple[Any, ...]:
    if isinstance(value, cls):
        value = (value,)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(field, value, f"must be a sequence of {cls.__name__}")
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            raise SpecError(
                f"{field}[{i}]",
                item,
                f"entries must be {cls.__name__} objects, not {kind_of(item)}",
            )
    return items


def init_containers(value: Iterable[InitContainer]) -> tuple[InitContainer, ...]:
    """Converter of ``PodSpec.init_containers``."""
    return _items("init_containers", InitContainer, value)


def sidecars(value: Iterable[Sidecar]) -> tuple[Sidecar, ...]:
    """Converter of ``PodSpec.sidecars``."""
    return _items("sidecars", Sidecar, value)


class _Pod(Protocol):
    """What :func:`check_containers` reads of a ``PodSpec`` (this module cannot import it)."""

    @property
    def container_name(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def command(self) -> tuple[str, ...]: ...
    @property
    def env(self) -> tuple[EnvVar, ...]: ...
    @property
    def init_containers(self) -> tuple[InitContainer, ...]: ...
    @property
    def sidecars(self) -> tuple[Sidecar, ...]: ...


def check_containers(spec: _Pod, _attribute: object, _value: object) -> None:
    """Validate the rules that need the whole pod (an attrs validator of ``PodSpec``).

    Names are unique across the main container, the sidecars and the init containers; their
    text and the main container's fit in one pod object.
    """
    seen = {spec.container_name: "container_name"}
    total = _blen(spec.image) + sum(_blen(arg) for arg in spec.command)
    total += sum(_blen(e.name) + _blen(e.value or "") for e in spec.env)
    for field, items in (("sidecars", spec.sidecars), ("init_containers", spec.init_containers)):
        for i, item in enumerate(items):
            path = f"{field}[{i}].name"
            if item.name in seen:
                raise SpecError(
                    path, item.name, f"container name already used by {seen[item.name]}"
                )
            seen[item.name] = path
            total += item.text_bytes()
            if total > _MAX_POD_TEXT:
                raise SpecError(
                    f"{field}[{i}]",
                    item.name,
                    f"the pod's containers total over {_MAX_POD_TEXT} bytes of text; one pod "
                    "may hold at most that (etcd refuses objects over 1.5 MiB): pass large "
                    "data in a volume instead",
                )
