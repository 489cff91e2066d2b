"""Field helpers of the spec: converters and checks shared by its value types, and FrozenMap."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from enum import Enum
from typing import Any, TypeVar

import attrs

from podrunner import _validation as v
from podrunner.errors import REDACTED, SpecError, kind_of

__all__ = ["FrozenMap", "SecretMap", "SecretRef"]

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

    # The dict's own views and lookups, rather than Mapping's generic ones built on the above.
    def __contains__(self, key: object) -> bool:
        return key in self._data

    def keys(self) -> KeysView[str]:
        return self._data.keys()

    def items(self) -> ItemsView[str, _V]:
        return self._data.items()

    def values(self) -> ValuesView[_V]:
        return self._data.values()

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
