"""A container's resources: quantities canonicalised, requests defaulted, limits checked; QoS.

One container's ``resources`` recur across a test suite's pods, so their result is memoised
by value (and by field path, which the causes carry).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from podrunner._validation import resource_name_error
from podrunner.backends.fake.field_errors import Errors, expect
from podrunner.backends.fake.memo import Memo, v
from podrunner.backends.fake.quantities import canonical_quantity, decode_quantity
from podrunner.errors import StatusCause

__all__ = ["check_resources", "is_extended", "qos_class", "resource_name_error"]

_QOS_RESOURCES = ("cpu", "memory")

#: Checked resources by field path and value: (the canonical resources, their causes).
_MEMO: Memo[tuple[Any, ...], tuple[dict[str, Any], list[StatusCause]]] = Memo(4096)


def is_extended(name: str) -> bool:
    """An extended resource: a domain-qualified name outside ``kubernetes.io``."""
    return "/" in name and not name.startswith("kubernetes.io/")


def _overcommittable(name: str) -> bool:
    return not is_extended(name) and not name.startswith("hugepages-")


def _memo_key(path: str, resources: object) -> tuple[Any, ...] | None:
    """The memo key of plain ``limits``/``requests`` maps of strings; ``None`` for the rest."""
    if (
        isinstance(resources, dict)
        and not resources.get("claims")
        and set(resources) <= {"limits", "requests"}
        and all(
            isinstance(resources.get(s), dict)
            and all(isinstance(q, str) for q in resources[s].values())
            for s in resources
        )
    ):
        return (path, *((s, tuple(resources[s].items())) for s in sorted(resources)))
    return None


def check_resources(
    kind: str, resources: object, path: str, errs: Errors, spec: dict[str, Any]
) -> None:
    """Canonicalise, default and check one container's resources (memoised: they recur)."""
    key = _memo_key(path, resources)
    if key is None:
        _check_uncached(kind, resources, path, errs, spec)
        return
    assert isinstance(resources, dict)
    hit = _MEMO.get(key)
    if hit is None:
        scratch = Errors(kind, "")
        copy = {s: dict(resources[s]) for s in resources}
        _check_uncached(kind, copy, path, scratch, spec)
        hit = _MEMO.put(key, (copy, scratch.causes))
    result, causes = hit
    resources.clear()
    resources.update({s: dict(values) for s, values in result.items()})
    errs.causes.extend(causes)


def _check_uncached(
    kind: str, resources: object, path: str, errs: Errors, spec: dict[str, Any]
) -> None:
    expect(kind, resources, dict, "Container.spec.containers.resources")
    assert isinstance(resources, dict)
    parsed = _canonicalise(kind, resources)
    limits = parsed.get("limits", {})
    if limits:
        _default_requests(resources, parsed)
    _check_amounts(resources, parsed, path, errs)
    _check_requests_against_limits(resources, parsed, path, errs)
    if any(n.startswith("hugepages-") for n in limits) and not (
        "cpu" in limits or "memory" in limits
    ):
        errs.forbidden(f"{path}.limits", "HugePages require cpu or memory")
    _check_claims(resources.get("claims"), path, errs, spec)


def _canonicalise(kind: str, resources: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    """Store each quantity as the server does; return the amounts by section and name."""
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("limits", "requests"):
        values = resources.get(section)
        if values is None:
            continue
        expect(kind, values, dict, f"ResourceRequirements.spec.containers.resources.{section}")
        parsed[section] = {}
        canonical = {}
        for name, quantity in values.items():
            text = canonical_quantity(decode_quantity(kind, quantity), True)
            canonical[name] = text
            parsed[section][name] = v.parse_quantity(text)
        resources[section] = canonical
    return parsed


def _default_requests(resources: dict[str, Any], parsed: dict[str, dict[str, Decimal]]) -> None:
    """Requests default to the limits of the resources that have none."""
    limits = parsed["limits"]
    requests = dict(resources.get("requests") or {})
    for name, text in resources["limits"].items():
        if name not in requests:
            requests[name] = text
            parsed.setdefault("requests", {})[name] = limits[name]
    resources["requests"] = requests


def _check_amounts(
    resources: dict[str, Any], parsed: dict[str, dict[str, Decimal]], path: str, errs: Errors
) -> None:
    for section in ("limits", "requests"):
        for name, amount in parsed.get(section, {}).items():
            key = f"{path}.{section}[{name}]"
            error = resource_name_error(name)
            if error:
                errs.invalid(key, name, error)
            if amount < 0:
                errs.invalid(key, resources[section][name], "must be greater than or equal to 0")
            elif not _overcommittable(name) and amount % 1 != 0:
                errs.invalid(key, resources[section][name], "must be an integer")


def _check_requests_against_limits(
    resources: dict[str, Any], parsed: dict[str, dict[str, Decimal]], path: str, errs: Errors
) -> None:
    limits = parsed.get("limits", {})
    for name, amount in parsed.get("requests", {}).items():
        limit = limits.get(name)
        overcommit = _overcommittable(name)
        if limit is None:
            if not overcommit:
                errs.required(
                    f"{path}.limits", "Limit must be set for non overcommitable resources"
                )
            continue
        request = resources["requests"][name]
        if amount != limit and not overcommit:
            errs.invalid(
                f"{path}.requests",
                request,
                f"must be equal to {name} limit of {resources['limits'][name]}",
            )
        elif amount > limit:
            errs.invalid(
                f"{path}.requests",
                request,
                f"must be less than or equal to {name} limit of {resources['limits'][name]}",
            )


def _check_claims(claims: object, path: str, errs: Errors, spec: dict[str, Any]) -> None:
    if not claims:
        return
    known = {c.get("name") for c in spec.get("resourceClaims") or () if isinstance(c, dict)}
    for j, claim in enumerate(claims if isinstance(claims, list) else ()):
        name = claim.get("name") if isinstance(claim, dict) else None
        if name not in known:
            errs.not_found(f"{path}.claims[{j}]", name)


def qos_class(containers: list[Any]) -> str:
    """GetPodQOS: only cpu and memory count, and only positive amounts."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in containers:
        resources = container.get("resources") if isinstance(container, dict) else None
        if not isinstance(resources, dict):
            resources = {}
        found = set()
        for section, total in (("requests", requests), ("limits", limits)):
            values = resources.get(section) or {}
            for res in _QOS_RESOURCES:
                text = values.get(res)
                if not isinstance(text, str):
                    continue
                amount = v.parse_quantity(text)
                if amount > 0:
                    total[res] = total.get(res, 0) + amount
                    if section == "limits":
                        found.add(res)
        if found != set(_QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(r) == requests.get(r) for r in _QOS_RESOURCES):
        return "Guaranteed"
    return "Burstable"
