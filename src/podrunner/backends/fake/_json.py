"""JSON-tree helpers: fast copies, input normalisation and merge patch.

Stored objects are never mutated in place: every write builds a new top-level dict and shares
unchanged subtrees with the previous version. Only what crosses the protocol is copied, with
:func:`copy_tree`, which knows the tree holds nothing but dicts, lists and scalars and is
several times faster than :func:`copy.deepcopy`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from podrunner._jsoncopy import copy_tree

__all__ = ["NotJSON", "copy_tree", "merge_patch", "normalize"]


_dict = dict
_list = list


class NotJSON(TypeError):
    """A value that has no JSON representation; ``path`` says where."""

    def __init__(self, path: str, value: object) -> None:
        self.path = path
        self.value = value
        super().__init__(f"{path.lstrip('.') or 'value'}: {type(value).__name__} is not JSON")


_SCALARS = (str, bool, int, type(None))
_ATOMIC = frozenset({str, int, bool, type(None)})


def normalize(value: Any) -> Any:
    """Copy caller input into a fresh JSON tree, as the client's JSON encoding would see it.

    Mappings become dicts with string keys, tuples become lists. Anything JSON cannot carry
    (sets, bytes, NaN, objects) raises :class:`NotJSON`, which callers turn into a 400.
    """
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is _dict:
        return _normalize_dict(value)
    if kind is _list or kind is tuple:
        return _normalize_list(value)
    if kind is float:
        if not math.isfinite(value):
            raise NotJSON("", value)
        return value
    if isinstance(value, Mapping):
        return _normalize_dict(dict(value))
    if isinstance(value, _SCALARS):  # str/int subclasses such as enums
        return value
    raise NotJSON("", value)


def _normalize_dict(value: dict[Any, Any]) -> dict[str, Any]:
    out = value.copy()
    for key, item in value.items():
        if type(key) is not str:
            raise NotJSON(f"[{key!r}]", key)
        if type(item) not in _ATOMIC:
            try:
                out[key] = normalize(item)
            except NotJSON as exc:
                raise NotJSON(f".{key}{exc.path}", exc.value) from None
    return out


def _normalize_list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    out = list(value)
    for i, item in enumerate(out):
        if type(item) not in _ATOMIC:
            try:
                out[i] = normalize(item)
            except NotJSON as exc:
                raise NotJSON(f"[{i}]{exc.path}", exc.value) from None
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; neither argument is modified."""
    if type(patch) is not dict:
        return patch
    out = dict(target) if type(target) is dict else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
