"""JSON-tree helpers: fast copies, input normalisation, merge patch and timestamps.

Stored objects are never mutated in place: every write builds a new top-level dict and shares
unchanged subtrees with the previous version. Only what crosses the protocol is copied, with
:func:`copy_tree`, which knows the tree holds nothing but dicts, lists and scalars and is
several times faster than :func:`copy.deepcopy`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from podrunner._jsoncopy import copy_tree

__all__ = [
    "copy_tree",
    "format_rfc3339",
    "format_rfc3339_nano",
    "merge_patch",
    "normalize",
    "parse_rfc3339",
]


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
    if kind is _list or kind is tuple:
        out_list = list(value)
        for i, item in enumerate(out_list):
            if type(item) not in _ATOMIC:
                try:
                    out_list[i] = normalize(item)
                except NotJSON as exc:
                    raise NotJSON(f"[{i}]{exc.path}", exc.value) from None
        return out_list
    if kind is float:
        if not math.isfinite(value):
            raise NotJSON("", value)
        return value
    if isinstance(value, Mapping):
        return normalize(dict(value))
    if isinstance(value, _SCALARS):  # str/int subclasses such as enums
        return value
    raise NotJSON("", value)


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


_last_second = -1
_last_text = ""


def format_rfc3339(epoch: float) -> str:
    """Format seconds since the epoch as the API server does (``2026-01-01T00:00:00Z``)."""
    global _last_second, _last_text
    second = int(epoch)
    # Writes cluster around the same second; caching the text saves a strftime per write.
    if second != _last_second:
        _last_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _last_second = second
    return _last_text


def format_rfc3339_nano(epoch_ns: int) -> str:
    """Format nanoseconds since the epoch as Go's RFC3339Nano (trailing zeros trimmed)."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos:
        return f"{base}.{nanos:09d}".rstrip("0") + "Z"
    return base + "Z"


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)"
)


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 timestamp into nanoseconds since the epoch.

    Raises:
        ValueError: The text is not an RFC 3339 timestamp.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"parsing time {text!r} as RFC3339")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    tz = dt.timezone.utc
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    stamp = dt.datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
    )
    nanos = int((frac or "").ljust(9, "0"))
    return int(stamp.timestamp()) * 1_000_000_000 + nanos
