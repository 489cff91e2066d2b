"""Node affinity: which nodes a pod may or should run on, by node label expressions.

A :class:`NodeAffinity` holds required terms (``nodeSelectorTerms``): the pod may run on a node
matching any term, and a term matches when all its :class:`NodeRequirement` expressions do. It
may also hold weighted :class:`NodePreference` terms, which the scheduler adds up to rank the
nodes the required terms allow (a preference never keeps a pod from running).
Anti-affinity to nodes is spelled with ``NotIn`` and ``DoesNotExist``. The rules are the API
server's ``ValidateNodeSelector`` ones, plus two it leaves to the scheduler: a ``Gt``/``Lt``
value must be an integer, and a term must not be empty (an empty term matches no node).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from podrunner import _validation as v
from podrunner.errors import SpecError, kind_of
from podrunner.spec._fields import _check, _str_tuple, _text

__all__ = ["NODE_OPERATORS", "NodeAffinity", "NodePreference", "NodeRequirement"]

NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
"""The operators of a node selector requirement."""

_FIELD = "node_affinity"
_INT64 = re.compile(r"[+-]?[0-9]+")


def _key(value: str) -> str:
    key = _text(f"{_FIELD}.key", value)
    _check(f"{_FIELD}.key", key, v.label_key_error(key))
    return key


def _operator(value: str) -> str:
    operator = _text(f"{_FIELD}.operator", value)
    if operator not in NODE_OPERATORS:
        allowed = ", ".join(f"'{op}'" for op in NODE_OPERATORS)
        raise SpecError(f"{_FIELD}.operator", operator, f"must be one of {allowed}")
    return operator


def _values(value: Iterable[str]) -> tuple[str, ...]:
    return _str_tuple(f"{_FIELD}.values", value)


@attrs.frozen
class NodeRequirement:
    """One node label expression (a ``matchExpressions`` entry).

    ``NodeRequirement("topology.kubernetes.io/zone", "In", ["eu-west-1a"])``. ``In`` and
    ``NotIn`` take one or more values, ``Exists`` and ``DoesNotExist`` none, ``Gt`` and ``Lt``
    exactly one; each value is a label value. Stricter than the server: a ``Gt``/``Lt`` value
    must be an integer, which the server accepts but the scheduler cannot compare (the pod
    would never be scheduled).

    Attributes:
        key: The node label key.
        operator: One of ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``, ``Gt``, ``Lt``.
        values: The label values the operator compares with.
    """

    key: str = attrs.field(converter=_key)
    operator: str = attrs.field(converter=_operator)
    values: tuple[str, ...] = attrs.field(default=(), converter=_values)

    def __attrs_post_init__(self) -> None:
        field = f"{_FIELD}.values"
        for i, item in enumerate(self.values):
            _check(f"{field}[{i}]", item, v.label_value_error(item))
        count = len(self.values)
        if self.operator in ("In", "NotIn") and count == 0:
            raise SpecError(
                field, self.values, "must be specified when `operator` is 'In' or 'NotIn'"
            )
        if self.operator in ("Exists", "DoesNotExist") and count:
            raise SpecError(
                field,
                self.values,
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )
        if self.operator in ("Gt", "Lt"):
            if count != 1:
                raise SpecError(
                    field,
                    self.values,
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )
            if not _INT64.fullmatch(self.values[0]) or not -(2**63) <= int(self.values[0]) < 2**63:
                raise SpecError(
                    field,
                    self.values[0],
                    "must be a 64-bit integer when `operator` is 'Lt' or 'Gt'",
                )

    def to_manifest(self) -> dict[str, Any]:
        """Return the ``matchExpressions`` entry."""
        out: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.values:
            out["values"] = list(self.values)
        return out


def _term(value: object) -> tuple[NodeRequirement, ...]:
    if isinstance(value, NodeRequirement):
        # A flat list of requirements would read as "all of these" but mean "any of these".
        raise SpecError(
            _FIELD,
            value,
            "a term must be a sequence of NodeRequirement (all must hold); use "
            "NodeAffinity.require(...) for a single term",
        )
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SpecError(
            _FIELD, value, f"a term must be a sequence of NodeRequirement, not {kind_of(value)}"
        )
    items = tuple(value)
    if not items:
        raise SpecError(_FIELD, items, "a term must hold at least one NodeRequirement")
    for item in items:
        if not isinstance(item, NodeRequirement):
            raise SpecError(_FIELD, item, f"must be a NodeRequirement, not {kind_of(item)}")
    return items


def _terms(value: Iterable[Iterable[NodeRequirement]]) -> tuple[tuple[NodeRequirement, ...], ...]:
    raw: object = value  # typed loosely on purpose: callers may pass anything at run time
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise SpecError(_FIELD, raw, f"must be a sequence of terms, not {kind_of(raw)}")
    return tuple(_term(term) for term in raw)


def _weight(value: int) -> int:
    raw: object = value
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SpecError(
            f"{_FIELD}.preferred.weight", raw, f"must be an integer, not {kind_of(raw)}"
        )
    if not 1 <= raw <= 100:
        raise SpecError(f"{_FIELD}.preferred.weight", raw, "must be in the range 1-100")
    return raw


@attrs.frozen
class NodePreference:
    """A weighted node preference (a ``preferredDuringScheduling...`` entry).

    Among the nodes a pod may run on, the scheduler favours those matching preferences with
    the highest total weight. ``NodePreference(80, [NodeRequirement("spot", "DoesNotExist")])``.
    Stricter than the server: a preference must hold at least one requirement (the server
    accepts an empty one, which matches no node and so does nothing).

    Attributes:
        weight: 1 to 100.
        requirements: The expressions a node must all meet to earn the weight.
    """

    weight: int = attrs.field(converter=_weight)
    requirements: tuple[NodeRequirement, ...] = attrs.field(converter=_term)

    def to_manifest(self) -> dict[str, Any]:
        """Return the ``preferredDuringSchedulingIgnoredDuringExecution`` entry."""
        expressions = [r.to_manifest() for r in self.requirements]
        return {"weight": self.weight, "preference": {"matchExpressions": expressions}}


def _preferences(value: Iterable[NodePreference]) -> tuple[NodePreference, ...]:
    raw: object = value
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise SpecError(
            f"{_FIELD}.preferred", raw, f"must be a sequence of NodePreference, not {kind_of(raw)}"
        )
    items = tuple(raw)
    for item in items:
        if not isinstance(item, NodePreference):
            raise SpecError(
                f"{_FIELD}.preferred", item, f"must be a NodePreference, not {kind_of(item)}"
            )
    return items


@attrs.frozen
class NodeAffinity:
    """Node affinity: nodes the pod must run on (required) and nodes it favours (preferred).

    Build one with :meth:`require` (one term: all requirements must hold) or give several
    terms (any one may hold), and add weighted preferences with :meth:`prefer`::

        NodeAffinity.require(NodeRequirement("nvidia.com/gpu.product", "In", ["H100"]))
        NodeAffinity([[NodeRequirement("zone", "In", ["a"])], [NodeRequirement("b", "Exists")]])
        NodeAffinity.require(GPU).prefer(80, NodeRequirement("spot", "DoesNotExist"))

    Attributes:
        required: The node selector terms, each a tuple of requirements; empty for none.
        preferred: Weighted preferences among the nodes the required terms allow.
    """

    required: tuple[tuple[NodeRequirement, ...], ...] = attrs.field(default=(), converter=_terms)
    preferred: tuple[NodePreference, ...] = attrs.field(
        default=(), kw_only=True, converter=_preferences
    )

    def __attrs_post_init__(self) -> None:
        if not self.required and not self.preferred:
            raise SpecError(
                _FIELD, self.required, "must have at least one node selector term or preference"
            )

    @classmethod
    def require(cls, *requirements: NodeRequirement) -> NodeAffinity:
        """Return an affinity of one term: nodes meeting all ``requirements``."""
        return cls((requirements,))

    @classmethod
    def preferring(cls, weight: int, *requirements: NodeRequirement) -> NodeAffinity:
        """Return an affinity of one preference: any node, those meeting ``requirements`` first."""
        return cls(preferred=(NodePreference(weight, requirements),))

    def prefer(self, weight: int, *requirements: NodeRequirement) -> NodeAffinity:
        """Return a copy with one more preference (all ``requirements`` earn ``weight``)."""
        return attrs.evolve(self, preferred=(*self.preferred, NodePreference(weight, requirements)))

    def to_manifest(self) -> dict[str, Any]:
        """Return the pod's ``affinity`` object."""
        node: dict[str, Any] = {}
        if self.required:
            terms = [{"matchExpressions": [r.to_manifest() for r in t]} for t in self.required]
            node["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
        if self.preferred:
            node["preferredDuringSchedulingIgnoredDuringExecution"] = [
                p.to_manifest() for p in self.preferred
            ]
        return {"nodeAffinity": node}
