"""Deep copies of JSON object trees, shared by the manifest builder and the fake cluster.

A tree holds nothing but dicts, lists and immutable scalars, so :func:`copy_tree` revisits
only nested containers and is several times faster than :func:`copy.deepcopy`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["copy_tree"]

_dict = dict
_list = list


def copy_tree(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of a JSON object tree (dicts, lists and immutable scalars only)."""
    # dict.copy() moves every scalar in C; only nested containers are revisited in Python.
    out = obj.copy()
    for key, value in obj.items():
        kind = type(value)
        if kind is _dict:
            out[key] = copy_tree(value)
        elif kind is _list:
            out[key] = _copy_list(value)
    return out


def _copy_list(items: list[Any]) -> list[Any]:
    out = items.copy()
    for i, value in enumerate(items):
        kind = type(value)
        if kind is _dict:
            out[i] = copy_tree(value)
        elif kind is _list:
            out[i] = _copy_list(value)
    return out
