"""The pod-spec reach fields against the real API server: 500 generated specs, one verdict.

``runtime_class_name``, ``priority_class_name``, ``Resources(extended=...)`` and
``NodeAffinity`` (required terms and weighted preferences) are generated with valid and invalid
values alike. podrunner must accept a spec exactly when the API server admits its manifest in a
server-side dry run; when podrunner refuses, the same raw values are written into a valid
manifest and sent, so the server judges the same input. Where podrunner is stricter on purpose,
the rule is named (and listed in docs/fake-fidelity.md).

A class that does not exist is refused by the server's admission (403) before any validation, so
the class names generated are either malformed or the name of a class this module creates: what
is compared is the validation of the name, not whether a cluster happens to have it.
"""

from __future__ import annotations

import contextlib
import copy
import re
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from podrunner import (
    NodeAffinity,
    NodePreference,
    NodeRequirement,
    PodSpec,
    Resources,
    build_manifests,
)
from podrunner import _validation as v
from podrunner.errors import (
    AlreadyExists,
    BadRequest,
    Forbidden,
    Invalid,
    ServerError,
    SpecError,
)

if TYPE_CHECKING:
    from conftest import Kit

pytestmark = pytest.mark.integration

CLASS = "podrunner-contract"
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
NAME_CHARS = "abz09-.X_"
KEY_CHARS = "abz09-._/A"
VALUE_CHARS = "abz09-._A"
OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "in", "Bogus"]
RESOURCE_NAMES = [
    "nvidia.com/gpu", "example.com/foo", "kubernetes.io/gpu", "nvidia.com/", "a/b/c",
    "Example.com/gpu", "example.com/foo_bar", "cpu", "hugepages-2Mi", "requests.example.com/x",
]  # fmt: skip
WEIGHTS = [-1, 0, 1, 50, 100, 101]
AMOUNTS = ["1", "0", "2", "8", "0.5", "500m", "-1", "1Gi", "1e3", "abc", "1k"]


def _malformed(name: str) -> bool:
    return not (SUBDOMAIN.fullmatch(name) and len(name) <= 253)


def class_names() -> st.SearchStrategy[str | None]:
    """No class, the class this module made, or a malformed name."""
    short = st.text(alphabet=NAME_CHARS, max_size=12).filter(_malformed)
    # Past the 253-character limit, whatever the characters.
    long = st.builds(
        lambda s: (s or "a") * (254 // len(s or "a") + 1), st.text(NAME_CHARS, max_size=4)
    )
    # Mostly no class or a good one, so the other fields decide often enough.
    return st.one_of(st.none(), st.none(), st.just(CLASS), st.just(CLASS), short, long)


requirement = st.fixed_dictionaries(
    {
        "key": st.one_of(
            st.sampled_from(["kubernetes.io/arch", "zone", "example.com/pool"]),
            st.text(alphabet=KEY_CHARS, max_size=10),
        ),
        "operator": st.sampled_from(OPERATORS),
        "values": st.lists(
            st.one_of(st.text(alphabet=VALUE_CHARS, max_size=8), st.sampled_from(["3", "-2"])),
            max_size=2,
        ),
    }
)

specs = st.fixed_dictionaries(
    {
        "runtime_class": class_names(),
        "priority_class": class_names(),
        "extended": st.one_of(
            st.just({}),
            st.dictionaries(st.sampled_from(RESOURCE_NAMES), st.sampled_from(AMOUNTS), max_size=2),
        ),
        "terms": st.one_of(
            st.none(),
            st.none(),
            st.lists(st.lists(requirement, max_size=2), min_size=1, max_size=2),
        ),
        "preferred": st.one_of(
            st.none(),
            st.none(),
            st.lists(
                st.tuples(st.sampled_from(WEIGHTS), st.lists(requirement, max_size=2)),
                min_size=1,
                max_size=2,
            ),
        ),
    }
)


@pytest.fixture
def classes_kit(kit: Kit) -> Kit:
    """A real API server with a RuntimeClass and a PriorityClass named ``CLASS``."""
    if kit.is_fake:
        pytest.skip("compares podrunner's validation with a real API server")
    backend: Any = kit.backend
    for path, body in (
        ("/apis/node.k8s.io/v1/runtimeclasses", {"handler": "runc"}),
        ("/apis/scheduling.k8s.io/v1/priorityclasses", {"value": 1000}),
    ):
        with contextlib.suppress(AlreadyExists):  # made by an earlier test of the session
            backend.request("POST", path, body={"metadata": {"name": CLASS}, **body})
    return kit


def podrunner_accepts(kit: Kit, raw: dict[str, Any]) -> dict[str, Any] | None:
    """The pod podrunner builds from the generated values, or ``None`` if it refuses them."""
    try:
        affinity = None
        if raw["terms"] is not None or raw["preferred"] is not None:
            affinity = NodeAffinity(
                [[_requirement(r) for r in term] for term in raw["terms"] or ()],
                preferred=[
                    NodePreference(weight, [_requirement(r) for r in term])
                    for weight, term in raw["preferred"] or ()
                ],
            )
        spec = PodSpec(
            image="busybox:1.36",
            command=["true"],
            namespace=kit.namespace,
            runtime_class_name=raw["runtime_class"],
            priority_class_name=raw["priority_class"],
            resources=Resources(extended=raw["extended"]),
            node_affinity=affinity,
        )
        pod: dict[str, Any] = build_manifests(spec).pod
    except SpecError:
        return None
    return pod


def _requirement(r: dict[str, Any]) -> NodeRequirement:
    return NodeRequirement(r["key"], r["operator"], r["values"])


def _expressions(term: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if v or k != "values"} for r in term]


def raw_manifest(kit: Kit, raw: dict[str, Any]) -> dict[str, Any]:
    """A valid podrunner pod with the generated values written in unchecked."""
    base = build_manifests(
        PodSpec(image="busybox:1.36", command=["true"], namespace=kit.namespace)
    ).pod
    pod = copy.deepcopy(base)
    spec = pod["spec"]
    for field, key in (
        ("runtimeClassName", "runtime_class"),
        ("priorityClassName", "priority_class"),
    ):
        if raw[key] is not None:
            spec[field] = raw[key]
    if raw["extended"]:
        # podrunner sets an extended resource as both limit and request, as the server asks.
        spec["containers"][0]["resources"] = {
            "limits": dict(raw["extended"]),
            "requests": dict(raw["extended"]),
        }
    node: dict[str, Any] = {}
    if raw["terms"] is not None:
        terms = [{"matchExpressions": _expressions(t)} for t in raw["terms"]]
        node["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    if raw["preferred"] is not None:
        node["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": w, "preference": {"matchExpressions": _expressions(t)}}
            for w, t in raw["preferred"]
        ]
    if node:
        spec["affinity"] = {"nodeAffinity": node}
    return pod


def server_accepts(kit: Kit, manifest: dict[str, Any]) -> bool:
    """The server's verdict in a dry run; a class it cannot find (403) is a refusal."""
    try:
        kit.backend.create(manifest, dry_run=True)
    except (Invalid, BadRequest):
        return False
    except Forbidden as exc:
        if "Class" not in exc.message:  # only the class admissions may refuse here
            raise
        return False
    except ServerError as exc:
        # The RuntimeClass admission looks a malformed name up before validation: 500.
        if "resource name" not in exc.message:
            raise
        return False
    return True


def known_stricter_rule(kit: Kit, raw: dict[str, Any]) -> str | None:
    """Name the documented rule podrunner refused for, if that rule alone explains it.

    - an empty ``priority_class_name``: the server reads it as none; podrunner refuses it
      (the server's RuntimeClass admission answers 500 for an empty or malformed name);
    - extended: podrunner's ``extended`` takes extended resources only (a domain outside
      ``kubernetes.io``); ``cpu``, ``hugepages-2Mi`` or ``kubernetes.io/x`` are native
      resources with fields or rules of their own;
    - node affinity: a ``Gt``/``Lt`` value must be an integer (the scheduler compares integers;
      the server stores any label value), a term or a preference must not be empty (it
      matches no node), and a preference's values must be label values (the server checks
      them in required terms only; a value no label can have matches no node).
    """
    fixed = copy.deepcopy(raw)
    reasons = []
    if raw["priority_class"] == "":
        fixed["priority_class"] = None
        reasons.append("an empty priority class name")
    native = [n for n in raw["extended"] if "/" not in n or n.startswith("kubernetes.io/")]
    if native:
        fixed["extended"] = {k: v for k, v in raw["extended"].items() if k not in native}
        reasons.append("a native resource in extended")
    if raw["terms"] is not None:
        kept = []
        for term in raw["terms"]:
            ok = _integer_comparisons(term, reasons)
            if ok:
                kept.append(ok)
            else:
                reasons.append("an empty node selector term")
        fixed["terms"] = kept or None
    if raw["preferred"] is not None:
        preferred = []
        for weight, term in raw["preferred"]:
            ok = _integer_comparisons(term, reasons)
            labels = [r for r in ok if not any(v.label_value_error(x) for x in r["values"])]
            if len(labels) != len(ok):
                reasons.append("a preference value that is not a label value")
            ok = labels
            if ok:
                preferred.append((weight, ok))
            else:
                reasons.append("an empty node preference")
        fixed["preferred"] = preferred or None
    if reasons and podrunner_accepts(kit, fixed) is not None:
        return "; ".join(sorted(set(reasons)))
    return None


def _integer_comparisons(term: list[dict[str, Any]], reasons: list[str]) -> list[dict[str, Any]]:
    ok = [r for r in term if not _non_integer_comparison(r)]
    if len(ok) != len(term):
        reasons.append("Gt/Lt with a value that is not an integer")
    return ok


def _non_integer_comparison(r: dict[str, Any]) -> bool:
    return r["operator"] in ("Gt", "Lt") and not (
        len(r["values"]) == 1 and re.fullmatch(r"[+-]?[0-9]+", r["values"][0])
    )


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(raw=specs)
def test_spec_reach_validation_matches_the_api_server(
    classes_kit: Kit, raw: dict[str, Any]
) -> None:
    """PodSpec accepts the new fields exactly when the API server admits them (dry run)."""
    ours = podrunner_accepts(classes_kit, raw)
    manifest = ours if ours is not None else raw_manifest(classes_kit, raw)
    theirs = server_accepts(classes_kit, manifest)
    event("accepted" if theirs else "refused")
    if ours is None and theirs:
        reason = known_stricter_rule(classes_kit, raw)
        if reason:
            event(f"podrunner stricter by design: {reason}")
            return
    assert (ours is not None) == theirs, (raw, manifest)


def test_a_pod_with_a_patch_is_admitted_as_built(classes_kit: Kit) -> None:
    """The escape hatch's output is a pod the API server admits, patched fields kept."""
    spec = PodSpec(
        image="busybox:1.36",
        command=["true"],
        namespace=classes_kit.namespace,
        secret_env={"TOKEN": "x"},
        pod_patch={
            "metadata": {"labels": {"team": "ml"}},
            "spec": {
                "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
                "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["api.internal"]}],
                "priorityClassName": CLASS,
            },
        },
    )
    stored = classes_kit.backend.create(build_manifests(spec).pod, dry_run=True)
    assert stored["spec"]["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["api.internal"]}]
    assert stored["spec"]["priorityClassName"] == CLASS
    assert stored["metadata"]["labels"]["team"] == "ml"
