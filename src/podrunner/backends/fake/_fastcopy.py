"""Fast copies of stored pods: a compiled constructor per memoised spec.

Every pod handed out is a deep copy, and the spec is most of a pod (the injected
ServiceAccount volume alone is fifteen nested dicts and lists). Pods made from the same
input spec get the same stored spec except for the name of their token volume, so the fake
compiles, once per input spec, a function that builds that spec as one nested literal with
the volume name as its argument. CPython builds a literal several times faster than
:func:`~podrunner._jsoncopy.copy_tree` walks a tree.

Nothing here is trusted blindly: a stored spec is registered for the fast path only when its
constructor, called with its token name, builds a tree equal to it. Anything else (a float
``repr`` cannot spell, a user string that contains the token name, a spec too large to
compile) is copied the ordinary way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podrunner._jsoncopy import copy_tree

__all__ = ["copy_object", "derive_spec", "forget_spec", "register_spec"]

_Builder = Callable[[str], dict[str, Any]]


class _Unseen:
    pass


_UNSEEN = _Unseen()
#: Constructors by template key (``None``: this template cannot be compiled).
_BUILDERS: dict[bytes, _Builder | None] = {}
#: Template keys seen once.
_SEEN: set[bytes] = set()
#: Registered stored specs: ``id(spec) -> (spec, constructor, token name)``. The entry holds
#: the spec, so its id cannot be reused while it is here.
_SPECS: dict[int, tuple[dict[str, Any], _Builder, str, dict[str, str] | None]] = {}
_MAX_BUILDERS = 256
_MAX_SPECS = 1024
_MAX_SOURCE = 20_000
_TOKEN_PREFIX = "kube-api-access-"  # noqa: S105 - a volume name, not a secret


def _token_name(spec: dict[str, Any]) -> str:
    volumes = spec.get("volumes")
    if isinstance(volumes, list) and volumes:
        last = volumes[-1]
        if isinstance(last, dict):
            name = last.get("name")
            if isinstance(name, str) and name.startswith(_TOKEN_PREFIX):
                return name
    return ""


def _compile(spec: dict[str, Any], token: str) -> _Builder | None:
    # repr() of a tree of dicts, lists, str, int, float, bool and None is a Python literal
    # of an equal tree: strings are quoted by repr, so the source holds no code of the
    # spec's making, and the one name it uses is the argument.
    source = repr(spec)
    if len(source) > _MAX_SOURCE:
        return None
    if token:
        source = source.replace(repr(token), "n")
    try:
        code = compile(f"lambda n: {source}", "<fake pod spec>", "eval")
        builder: _Builder = eval(code, {"__builtins__": {}})  # noqa: S307 - a literal, see above
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return builder


def register_spec(key: bytes, spec: dict[str, Any]) -> None:
    """Let :func:`copy_object` build ``spec`` from the constructor of template ``key``.

    ``key`` identifies the input spec the stored one was prepared from (the validation
    memo's key); the stored spec must never be mutated afterwards (the store's convention).
    """
    token = _token_name(spec)
    builder = _BUILDERS.get(key, _UNSEEN)
    if builder is _UNSEEN:
        # Compiling costs as much as dozens of copies: only a spec seen twice is compiled,
        # so random traffic, where nearly every spec is new, does not pay for it.
        if key not in _SEEN:
            if len(_SEEN) >= _MAX_BUILDERS:
                _SEEN.clear()
            _SEEN.add(key)
            return
        _SEEN.discard(key)
        if len(_BUILDERS) >= _MAX_BUILDERS:
            _BUILDERS.clear()
        builder = _BUILDERS[key] = _compile(spec, token)
    if builder is None:
        return
    assert not isinstance(builder, _Unseen)
    try:
        same = builder(token) == spec
    except Exception:  # e.g. a float repr does not spell (nan): the ordinary copy
        same = False
    if not same:
        return
    if len(_SPECS) >= _MAX_SPECS:
        _SPECS.clear()  # only the fast path is lost
    _SPECS[id(spec)] = (spec, builder, token, None)


def derive_spec(old: dict[str, Any], new: dict[str, Any], overlay: dict[str, str]) -> None:
    """Register ``new``, made as ``{**old, **overlay}``, when ``old`` is registered.

    The kubelet's binding does this (``nodeName``); ``overlay`` holds strings only, so the
    built copy shares nothing with the store.
    """
    entry = _SPECS.get(id(old))
    if entry is None or entry[0] is not old:
        return
    merged = dict(entry[3] or {})
    merged.update(overlay)
    # The old version lives on only in the history: it is copied the ordinary way, and the
    # table stays as small as the number of live pods.
    del _SPECS[id(old)]
    if len(_SPECS) >= _MAX_SPECS:
        _SPECS.clear()
    _SPECS[id(new)] = (new, entry[1], entry[2], merged)


def forget_spec(spec: object) -> None:
    """Drop a spec from the fast path (its pod is gone)."""
    entry = _SPECS.get(id(spec))
    if entry is not None and entry[0] is spec:
        del _SPECS[id(spec)]


def copy_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of a stored object, building a registered spec from its literal."""
    spec = obj.get("spec")
    entry = _SPECS.get(id(spec)) if spec is not None else None
    if entry is None or entry[0] is not spec:
        return copy_tree(obj)
    out = obj.copy()
    for key, value in obj.items():
        if value is spec:
            built = entry[1](entry[2])
            if entry[3] is not None:
                built.update(entry[3])  # in the order {**old, **overlay} gives
            out[key] = built
        elif type(value) is dict:
            out[key] = copy_tree(value)
        elif type(value) is list:
            out[key] = copy_tree({"": value})[""]
    return out
