"""Pod-spec reach: runtime and priority classes, extended resources (GPUs).

Each is checked before any API call, rendered into the pod, carried by a run on the fake, and
refused by PodSpec exactly where the fake (which answers as the API server) refuses it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podrunner import NodeAffinity, NodeRequirement, PodRunner, PodSpec, Resources, SpecError
from podrunner.errors import Forbidden, Invalid
from podrunner.manifest import build_manifests
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["true"])

BAD_NAMES = [
    ("", "RFC 1123 subdomain"),
    ("gVisor", "RFC 1123 subdomain"),
    ("run_sc", "RFC 1123 subdomain"),
    ("-kata", "RFC 1123 subdomain"),
    ("kata.", "RFC 1123 subdomain"),
    ("a" * 254, "no more than 253 characters"),
]


# -- runtime_class_name and priority_class_name --------------------------------------------


@pytest.mark.parametrize("field", ["runtime_class_name", "priority_class_name"])
@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
def test_bad_class_names_are_refused_naming_field_value_and_rule(
    field: str, name: str, rule: str
) -> None:
    with pytest.raises(SpecError) as info:
        SPEC.replace(**{field: name})
    assert info.value.field == field
    assert info.value.value == name
    assert rule in info.value.rule


@pytest.mark.parametrize("field", ["runtime_class_name", "priority_class_name"])
@pytest.mark.parametrize("value", [3, b"gvisor", ["gvisor"]])
def test_class_names_must_be_strings(field: str, value: object) -> None:
    with pytest.raises(SpecError, match="must be a string") as info:
        SPEC.replace(**{field: value})
    assert info.value.field == field


def test_class_names_render_into_the_pod_spec() -> None:
    spec = SPEC.with_runtime_class("gvisor").with_priority_class("batch.low")
    assert (spec.runtime_class_name, spec.priority_class_name) == ("gvisor", "batch.low")
    pod = build_manifests(spec, run_id="r1").pod["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["priorityClassName"] == "batch.low"
    plain = build_manifests(spec.with_runtime_class(None).with_priority_class(None)).pod["spec"]
    assert "runtimeClassName" not in plain
    assert "priorityClassName" not in plain


def test_a_run_on_the_fake_carries_the_classes() -> None:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=1.0)
    seen: dict[str, Any] = {}

    def on_state(_: object) -> None:
        for pod in cluster.backend.list("Pod", "default").items:
            seen["spec"] = pod["spec"]

    spec = SPEC.with_runtime_class("gvisor").with_priority_class("system-node-critical")
    result = PodRunner(cluster.backend).run(spec, on_state=on_state)
    assert result.exit_code == 0
    assert seen["spec"]["runtimeClassName"] == "gvisor"
    assert seen["spec"]["priorityClassName"] == "system-node-critical"
    # Priority admission resolved the class into the pod's priority, as the server does.
    assert seen["spec"]["priority"] == 2000001000


def test_a_missing_priority_class_is_refused_by_the_cluster() -> None:
    # A well-formed name is a cluster fact PodSpec cannot know: the server answers 403.
    cluster = FakeCluster()
    with pytest.raises(Forbidden, match="no PriorityClass with name high was found"):
        PodRunner(cluster.backend).run(SPEC.with_priority_class("high"))
    assert not cluster.backend.list("Pod", "default").items


# -- extended resources ----------------------------------------------------------------------


def test_extended_resources_become_equal_limits_and_requests() -> None:
    spec = SPEC.with_resources(
        cpu_limit="1", extended={"nvidia.com/gpu": 1, "example.com/fpga": "2"}
    )
    assert spec.resources.extended == {"nvidia.com/gpu": "1", "example.com/fpga": "2"}
    resources = build_manifests(spec).pod["spec"]["containers"][0]["resources"]
    assert resources == {
        "limits": {"cpu": "1", "nvidia.com/gpu": "1", "example.com/fpga": "2"},
        "requests": {"nvidia.com/gpu": "1", "example.com/fpga": "2"},
    }
    # with_resources keeps what it is not told to change.
    assert spec.with_resources(memory_limit="1Gi").resources.extended == {
        "nvidia.com/gpu": "1",
        "example.com/fpga": "2",
    }


BAD_EXTENDED = [
    ({"nvidia.com/gpu": 1.5}, "resources.extended[nvidia.com/gpu]", "must be an integer"),
    ({"nvidia.com/gpu": "500m"}, "resources.extended[nvidia.com/gpu]", "must be an integer"),
    ({"nvidia.com/gpu": -1}, "resources.extended[nvidia.com/gpu]", "greater than or equal to 0"),
    ({"nvidia.com/gpu": "1 GPU"}, "resources.extended[nvidia.com/gpu]", "regular expression"),
    ({"nvidia.com/gpu": None}, "resources.extended[nvidia.com/gpu]", "whole amount"),
    ({"nvidia.com/gpu": True}, "resources.extended[nvidia.com/gpu]", "must be a string"),
    ({"gpu": 1}, "resources.extended", "must be a standard resource for containers"),
    ({"kubernetes.io/gpu": 1}, "resources.extended", "must be a standard resource"),
    ({"requests.example.com/gpu": 1}, "resources.extended", "must be a standard resource"),
    ({"a/b/c": 1}, "resources.extended", "qualified name"),
    ({"Nvidia_.com/gpu": 1}, "resources.extended", "prefix part"),
    ({"cpu": 1}, "resources.extended", "must be an extended resource"),
    ({"memory": "1Gi"}, "resources.extended", "must be an extended resource"),
    ({3: 1}, "resources.extended", "must be a string"),
    ("nvidia.com/gpu", "resources.extended", "must be a mapping"),
]


@pytest.mark.parametrize(("extended", "field", "rule"), BAD_EXTENDED)
def test_bad_extended_resources_are_refused(extended: object, field: str, rule: str) -> None:
    with pytest.raises(SpecError) as info:
        Resources(extended=extended)
    assert info.value.field == field
    assert rule in info.value.rule


def test_a_run_on_the_fake_carries_the_extended_resources() -> None:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(after=1.0)
    seen: dict[str, Any] = {}

    def on_state(_: object) -> None:
        for pod in cluster.backend.list("Pod", "default").items:
            seen["resources"] = pod["spec"]["containers"][0]["resources"]

    spec = SPEC.with_resources(extended={"nvidia.com/gpu": "1000m"})
    assert PodRunner(cluster.backend).run(spec, on_state=on_state).exit_code == 0
    # The server stores the canonical form of the quantity.
    assert seen["resources"] == {
        "limits": {"nvidia.com/gpu": "1"},
        "requests": {"nvidia.com/gpu": "1"},
    }


# -- agreement with the fake, which answers as the API server ----------------------------------


def _fake_refuses(mutate: Any) -> bool:
    """Create the pod of SPEC, changed by ``mutate``, on a fresh fake (dry run): refused?"""
    pod = copy.deepcopy(build_manifests(SPEC, run_id="r1").pod)
    mutate(pod["spec"])
    try:
        FakeCluster().backend.create(pod, dry_run=True)
    except (Invalid, Forbidden):
        return True
    return False


def _spec_refuses(**changes: Any) -> bool:
    try:
        SPEC.replace(**changes)
    except SpecError:
        return True
    return False


def _extended_refused(name: str, amount: str) -> bool:
    try:
        SPEC.with_resources(extended={name: amount})
    except SpecError:
        return True
    return False


AMOUNTS = ["0", "1", "2", "1000m", "1500m", "0.5", "-1", "1e3", "2Ki", "1.0"]
NAMES = ["nvidia.com/gpu", "example.com/fpga", "gpu", "kubernetes.io/gpu", "a/b/c", "x.io/"]


@pytest.mark.parametrize("amount", AMOUNTS)
@pytest.mark.parametrize("name", NAMES)
def test_extended_resource_refusals_agree_with_the_fake(name: str, amount: str) -> None:
    def mutate(spec: dict[str, Any]) -> None:
        values = {name: amount}
        spec["containers"][0]["resources"] = {"limits": values, "requests": dict(values)}

    assert _extended_refused(name, amount) == _fake_refuses(mutate)


def test_extended_limits_without_equal_requests_are_refused_by_the_fake() -> None:
    # Why PodSpec takes one amount per resource: the server wants requests equal to limits.
    def unequal(spec: dict[str, Any]) -> None:
        spec["containers"][0]["resources"] = {
            "limits": {"nvidia.com/gpu": "2"},
            "requests": {"nvidia.com/gpu": "1"},
        }

    def request_only(spec: dict[str, Any]) -> None:
        spec["containers"][0]["resources"] = {"requests": {"nvidia.com/gpu": "1"}}

    assert _fake_refuses(unequal)
    assert _fake_refuses(request_only)


@pytest.mark.parametrize("name", ["system-node-critical", "Bad_Name", "-x", "x.", "a" * 254])
def test_priority_class_refusals_agree_with_the_fake(name: str) -> None:
    assert _spec_refuses(priority_class_name=name) == _fake_refuses(
        lambda spec: spec.update(priorityClassName=name)
    )


# -- node affinity -----------------------------------------------------------------------------


ZONE = NodeRequirement("topology.kubernetes.io/zone", "In", ["eu-west-1a", "eu-west-1b"])
NO_SPOT = NodeRequirement("node.example.com/spot", "DoesNotExist")


def test_node_affinity_renders_required_terms() -> None:
    spec = SPEC.with_node_affinity(
        NodeAffinity([[ZONE, NO_SPOT], [NodeRequirement("cores", "Gt", ["16"])]])
    )
    affinity = build_manifests(spec).pod["spec"]["affinity"]
    assert affinity == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "topology.kubernetes.io/zone",
                                "operator": "In",
                                "values": ["eu-west-1a", "eu-west-1b"],
                            },
                            {"key": "node.example.com/spot", "operator": "DoesNotExist"},
                        ]
                    },
                    {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["16"]}]},
                ]
            }
        }
    }
    assert NodeAffinity.require(ZONE, NO_SPOT).required == ((ZONE, NO_SPOT),)
    assert "affinity" not in build_manifests(spec.with_node_affinity(None)).pod["spec"]


BAD_REQUIREMENTS: list[tuple[tuple[Any, ...], str, str]] = [
    (("Bad Key", "In", ["a"]), "node_affinity.key", "name part must consist"),
    (("", "Exists"), "node_affinity.key", "name part must be non-empty"),
    (("zone", "in", ["a"]), "node_affinity.operator", "must be one of 'In', 'NotIn'"),
    (("zone", "In", []), "node_affinity.values", "must be specified when `operator` is 'In'"),
    (("zone", "NotIn"), "node_affinity.values", "must be specified when `operator` is 'In'"),
    (("zone", "Exists", ["a"]), "node_affinity.values", "may not be specified"),
    (("zone", "DoesNotExist", ["a"]), "node_affinity.values", "may not be specified"),
    (("cores", "Gt", ["1", "2"]), "node_affinity.values", "single value"),
    (("cores", "Lt", []), "node_affinity.values", "single value"),
    (("cores", "Gt", ["many"]), "node_affinity.values", "64-bit integer"),
    (("cores", "Lt", [str(2**63)]), "node_affinity.values", "64-bit integer"),
    (("zone", "In", ["a b"]), "node_affinity.values[0]", "a valid label must be"),
    (("zone", "In", ["x" * 64]), "node_affinity.values[0]", "no more than 63"),
    (("zone", "In", "a"), "node_affinity.values", "not a single string"),
    ((3, "In", ["a"]), "node_affinity.key", "must be a string"),
]


@pytest.mark.parametrize(("args", "field", "rule"), BAD_REQUIREMENTS)
def test_bad_node_requirements_are_refused(args: tuple[Any, ...], field: str, rule: str) -> None:
    with pytest.raises(SpecError) as info:
        NodeRequirement(*args)
    assert info.value.field == field
    assert rule in str(info.value)


@pytest.mark.parametrize(
    ("terms", "rule"),
    [
        ([], "at least one node selector term"),
        ([[]], "a term must hold at least one NodeRequirement"),
        ([ZONE, NO_SPOT], "use NodeAffinity.require(...) for a single term"),
        ([["zone"]], "must be a NodeRequirement, not a string"),
        ("zone", "must be a sequence of terms"),
        (None, "must be a sequence of terms"),
    ],
)
def test_bad_node_affinity_terms_are_refused(terms: Any, rule: str) -> None:
    with pytest.raises(SpecError) as info:
        NodeAffinity(terms)
    assert info.value.field == "node_affinity"
    assert rule in info.value.rule


def test_node_preferences_render_weighted_terms_next_to_the_required_ones() -> None:
    affinity = NodeAffinity.require(ZONE).prefer(80, NO_SPOT).prefer(5, ZONE, NO_SPOT)
    node = build_manifests(SPEC.with_node_affinity(affinity)).pod["spec"]["affinity"][
        "nodeAffinity"
    ]
    assert node["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchExpressions": [ZONE.to_manifest()]}]
    }
    assert node["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 80, "preference": {"matchExpressions": [NO_SPOT.to_manifest()]}},
        {
            "weight": 5,
            "preference": {"matchExpressions": [ZONE.to_manifest(), NO_SPOT.to_manifest()]},
        },
    ]
    only = NodeAffinity.preferring(1, NO_SPOT).to_manifest()["nodeAffinity"]
    assert list(only) == ["preferredDuringSchedulingIgnoredDuringExecution"]


@pytest.mark.parametrize(
    ("make", "field", "rule"),
    [
        (lambda: NodeAffinity.preferring(0, ZONE), "node_affinity.preferred.weight", "1-100"),
        (lambda: NodeAffinity.preferring(101, ZONE), "node_affinity.preferred.weight", "1-100"),
        (lambda: NodeAffinity.preferring(True, ZONE), "node_affinity.preferred.weight", "integer"),
        (lambda: NodeAffinity.preferring(1.5, ZONE), "node_affinity.preferred.weight", "integer"),
        (lambda: NodeAffinity.preferring(50), "node_affinity", "at least one NodeRequirement"),
        (lambda: NodeAffinity(preferred=[ZONE]), "node_affinity.preferred", "NodePreference"),
        (lambda: NodeAffinity(preferred="x"), "node_affinity.preferred", "sequence"),
        (lambda: NodeAffinity(), "node_affinity", "term or preference"),
    ],
)
def test_bad_node_preferences_are_refused(make: Any, field: str, rule: str) -> None:
    with pytest.raises(SpecError) as info:
        make()
    assert info.value.field == field
    assert rule in info.value.rule


def test_node_affinity_must_be_a_node_affinity() -> None:
    with pytest.raises(SpecError, match="must be a NodeAffinity, not a mapping"):
        SPEC.replace(node_affinity={"nodeAffinity": {}})


def test_a_run_on_the_fake_carries_the_node_affinity() -> None:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(after=1.0)
    seen: dict[str, Any] = {}

    def on_state(_: object) -> None:
        for pod in cluster.backend.list("Pod", "default").items:
            seen["affinity"] = pod["spec"].get("affinity")

    spec = SPEC.with_node_affinity(NodeAffinity.require(ZONE))
    assert PodRunner(cluster.backend).run(spec, on_state=on_state).exit_code == 0
    assert seen["affinity"] == NodeAffinity.require(ZONE).to_manifest()
