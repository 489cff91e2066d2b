"""Label and field selectors, parsed and matched as the API server does.

Label selectors support the whole grammar (``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k``, ``!k``); a parse error is a 400 ``BadRequest``. Field selectors
support ``=``, ``==`` and ``!=`` on exactly the fields the real server indexes for each kind;
any other field is rejected with the server's ``field label not supported`` message rather
than ignored, so a test cannot pass by accident.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from podrunner.backends.fake.validation import v as _validation
from podrunner.errors import BadRequest

__all__ = [
    "FIELD_GETTERS",
    "FieldSelector",
    "LabelSelector",
    "matches",
    "parse_field",
    "parse_label",
    "select",
]

Requirement = tuple[str, str, frozenset[str]]


class LabelSelector:
    """A parsed label selector: a conjunction of requirements."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Return whether an object's labels satisfy every requirement."""
        labels = labels or {}
        for key, op, values in self.requirements:
            present = key in labels
            if op == "in":
                if not present or labels[key] not in values:
                    return False
            elif op == "notin":
                if present and labels[key] in values:
                    return False
            elif op == "exists":
                if not present:
                    return False
            elif present:  # "!"
                return False
        return True


_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


def _bad_label(selector: str, detail: str) -> BadRequest:
    return BadRequest(f"unable to parse requirement: {detail}", reason="BadRequest")


def parse_label(selector: str | None) -> LabelSelector | None:
    """Parse a label selector string (``None`` or blank selects everything).

    Raises:
        BadRequest: The selector does not parse, is not a string, or names an invalid key or
            value.
    """
    if selector is None:
        return None
    _check_text("label", selector)
    return _parse_label(selector)


def _check_text(what: str, selector: object) -> None:
    if not isinstance(selector, str):
        raise BadRequest(
            f"invalid {what} selector {selector!r}: a selector is a string, "
            f"not {type(selector).__name__}"
        )


@functools.lru_cache(maxsize=1024)  # parsed selectors are never mutated; runs repeat them
def _parse_label(selector: str) -> LabelSelector | None:
    if not selector.strip():
        return None
    return _LabelParser(selector).parse()


_SYMBOLS = ("=", "==", "!=", "(", ")", ",")


class _LabelParser:
    """The label selector grammar, parsed by recursive descent with the server's messages."""

    def __init__(self, selector: str) -> None:
        self.selector = selector
        self.tokens = _tokens(selector)
        self.i = 0

    def parse(self) -> LabelSelector:
        reqs = [self._requirement()]
        while self.i < len(self.tokens):
            tok = self.tokens[self.i]
            if tok != ",":
                raise self._bad(f"found '{tok}', expected: ',' or 'end of string'")
            self.i += 1
            reqs.append(self._requirement())
        return LabelSelector(reqs)

    def _bad(self, detail: str) -> BadRequest:
        return _bad_label(self.selector, detail)

    def _at_end_of_requirement(self) -> bool:
        return self.i >= len(self.tokens) or self.tokens[self.i] == ","

    def _need(self, what: str) -> str:
        if self.i >= len(self.tokens):
            raise self._bad(f"found '', expected: {what}")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _requirement(self) -> Requirement:
        tok = self._need("identifier")
        if tok == "!":
            key = self._need("identifier")
            _check_key(self.selector, key)
            return (key, "!", frozenset())
        if tok in _SYMBOLS:
            raise self._bad(f"found '{tok}', expected: !, identifier")
        _check_key(self.selector, tok)
        if self._at_end_of_requirement():
            return (tok, "exists", frozenset())
        op = self._need("operator")
        if op in ("=", "==", "!="):
            return (tok, "notin" if op == "!=" else "in", frozenset([self._value()]))
        if op in ("in", "notin"):
            return (tok, op, self._values(tok, op))
        raise self._bad(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")

    def _value(self) -> str:
        if self._at_end_of_requirement():
            return ""  # "k=" selects an empty (or, for !=, non-empty) value
        value = self._need("identifier")
        if value in ("=", "==", "!=", "(", ")", "!"):
            raise self._bad(f"found '{value}', expected: identifier")
        _check_value(self.selector, value)
        return value

    def _values(self, key: str, op: str) -> frozenset[str]:
        if self._need("(") != "(":
            raise self._bad(f"found '{self.tokens[self.i - 1]}', expected: '('")
        values: set[str] = set()
        expect_value = True
        while True:
            tok = self._need("identifier or ')'")
            if tok == ")":
                if expect_value and values:
                    values.add("")
                break
            if tok == ",":
                if expect_value:
                    values.add("")
                expect_value = True
                continue
            if not expect_value:
                raise self._bad(f"found '{tok}', expected: ',' or ')'")
            _check_value(self.selector, tok)
            values.add(tok)
            expect_value = False
        if not values:
            raise self._bad(
                f"{key}: Invalid value: \"{op}\": for 'in', 'notin' operators, "
                "values set can't be empty"
            )
        return frozenset(values)


def _tokens(selector: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = selector.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # pragma: no cover - the pattern accepts any non-space run
            raise _bad_label(selector, f"found '{text[pos:]}'")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _check_key(selector: str, key: str) -> None:
    error = _validation.label_key_error(key)
    if error:
        raise _bad_label(selector, f'key: Invalid value: "{key}": {error}')


def _check_value(selector: str, value: str) -> None:
    error = _validation.label_value_error(value)
    if error:
        raise _bad_label(selector, f'values[0]: Invalid value: "{value}": {error}')


# -- field selectors ----------------------------------------------------------------------

Getter = Callable[[dict[str, Any]], str]


def _path(*keys: str) -> Getter:
    def get(obj: dict[str, Any]) -> str:
        cur: Any = obj
        for key in keys:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(key)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


_META = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

#: The fields each kind can be selected on, as the real API server registers them.
FIELD_GETTERS: dict[str, dict[str, Getter]] = {
    "Pod": {
        **_META,
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "Secret": {**_META, "type": _path("type")},
    "ConfigMap": dict(_META),
    "NetworkPolicy": dict(_META),
    "Namespace": {**_META, "status.phase": _path("status", "phase")},
    "Event": {
        **_META,
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
}


class FieldSelector:
    """A parsed field selector: ``(getter, field, equal?, value)`` terms, all required."""

    __slots__ = ("terms",)

    def __init__(self, terms: list[tuple[Getter, str, bool, str]]) -> None:
        self.terms = terms

    def matches(self, obj: dict[str, Any]) -> bool:
        """Return whether the object satisfies every term."""
        return all((getter(obj) == value) is equal for getter, _field, equal, value in self.terms)

    def exact_name(self) -> str | None:
        """Return the name pinned by ``metadata.name=x``, if any (used to skip scans)."""
        for _getter, field, equal, value in self.terms:
            if field == "metadata.name" and equal:
                return value
        return None


def parse_field(kind: str, selector: str | None) -> FieldSelector | None:
    """Parse a field selector for ``kind`` (``None`` or blank selects everything).

    Raises:
        BadRequest: Bad syntax, or a field the API server does not support for the kind.
    """
    if selector is None:
        return None
    _check_text("field", selector)
    if not selector.strip():
        return None
    getters = FIELD_GETTERS.get(kind, _META)
    terms: list[tuple[Getter, str, bool, str]] = []
    for part in _split_unescaped(selector):
        if "!=" in part:
            field, _, value = part.partition("!=")
            equal = False
        elif "==" in part:
            field, _, value = part.partition("==")
            equal = True
        elif "=" in part:
            field, _, value = part.partition("=")
            equal = True
        else:
            raise BadRequest(f"invalid selector: '{selector}'; can't understand '{part}'")
        field = field.strip()
        getter = getters.get(field)
        if getter is None:
            raise BadRequest(f"field label not supported: {field}")
        terms.append((getter, field, equal, _unescape(value)))
    return FieldSelector(terms)


def _split_unescaped(selector: str) -> list[str]:
    if "\\" not in selector:
        return selector.split(",")  # nothing escaped: the common case, done in C
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in selector:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return re.sub(r"\\(.)", r"\1", value)


# -- selecting ------------------------------------------------------------------------------


def matches(
    obj: dict[str, Any], labels: LabelSelector | None, fields: FieldSelector | None
) -> bool:
    """Return whether an object satisfies both selectors (``None`` selects everything)."""
    if labels is not None and not labels.matches(obj["metadata"].get("labels")):
        return False
    return fields is None or fields.matches(obj)


def select(
    objects: dict[tuple[str | None, str], dict[str, Any]],
    namespace: str | None,
    labels: LabelSelector | None = None,
    fields: FieldSelector | None = None,
) -> list[dict[str, Any]]:
    """Return the objects in ``namespace`` (``None``: all) that match, in name order."""
    name = None if fields is None else fields.exact_name()
    if name is not None and namespace is not None:
        obj = objects.get((namespace, name))
        candidates = [] if obj is None else [obj]
    else:
        candidates = [
            obj
            for (ns, _), obj in sorted(objects.items(), key=_sort_key)
            if namespace is None or ns == namespace
        ]
    if labels is None and fields is None:
        return candidates
    return [o for o in candidates if matches(o, labels, fields)]


def _sort_key(item: tuple[tuple[str | None, str], Any]) -> tuple[str, str]:
    return (item[0][0] or "", item[0][1])
