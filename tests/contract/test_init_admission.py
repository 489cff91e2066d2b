"""Init containers and native sidecars: podrunner's rules against the API server's dry run.

The property test builds pods with an init container and a sidecar from generated names,
images and environment variable names, and checks that podrunner accepts a spec exactly when
the real API server admits its manifest (when podrunner refuses, the raw values go into a
valid manifest, so the server judges the same input). The other tests run on the fake too.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podrunner import InitContainer, PodSpec, Sidecar, SpecError, build_manifests
from podrunner.errors import BadRequest, Invalid

if TYPE_CHECKING:
    from conftest import Kit

pytestmark = pytest.mark.integration

NAME_CHARS = "abcz09-.X_"
IMAGES = ["alpine/git:2.45.2", "registry.example/ns/img@sha256:" + "a" * 64, " busybox", ""]


def _name() -> st.SearchStrategy[str]:
    short = st.text(alphabet=NAME_CHARS, min_size=0, max_size=8)
    long = st.builds(
        lambda s, n: (s or "a") * n, st.text(NAME_CHARS, max_size=3), st.integers(20, 40)
    )
    return st.one_of(short, long, st.sampled_from(["main", "fetch", "proxy"]))


raws = st.fixed_dictionaries(
    {
        "init": _name(),
        "sidecar": _name(),
        "image": st.sampled_from(IMAGES),
        "env": st.text(alphabet="AZaz09_.-=", min_size=0, max_size=6),
    }
)


def _spec(kit: Kit, raw: dict[str, Any]) -> PodSpec:
    return PodSpec(
        "busybox:1.36",
        ["true"],
        name="p",
        namespace=kit.namespace,
        init_containers=[
            InitContainer(raw["init"], image=raw["image"], command=["true"], env={raw["env"]: "v"})
        ],
        sidecars=[Sidecar(raw["sidecar"], image="busybox:1.36", command=["sleep", "1"])],
    )


def podrunner_accepts(kit: Kit, raw: dict[str, Any]) -> dict[str, Any] | None:
    """The pod podrunner builds, or ``None`` when it refuses the spec."""
    try:
        pod: dict[str, Any] = build_manifests(_spec(kit, raw)).pod
    except SpecError:
        return None
    return pod


def raw_manifest(kit: Kit, raw: dict[str, Any]) -> dict[str, Any]:
    """A valid podrunner manifest with the generated values written in unchecked."""
    ok = {"init": "fetch", "sidecar": "proxy", "image": "busybox:1.36", "env": "A"}
    pod = copy.deepcopy(build_manifests(_spec(kit, ok)).pod)
    sidecar, init = pod["spec"]["initContainers"]
    sidecar["name"] = raw["sidecar"]
    init["name"] = raw["init"]
    init["image"] = raw["image"]
    init["env"] = [{"name": raw["env"], "value": "v"}]
    return pod


def server_accepts(kit: Kit, manifest: dict[str, Any]) -> bool:
    try:
        kit.backend.create(manifest, dry_run=True)
    except (Invalid, BadRequest):
        return False
    return True


@pytest.fixture
def real_kit(kit: Kit) -> Kit:
    if kit.is_fake:
        pytest.skip("compares podrunner's validation with a real API server")
    return kit


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=raws)
def test_podrunner_init_rules_match_the_api_server(real_kit: Kit, raw: dict[str, Any]) -> None:
    """Names (unique, not the main container's), images and env names: the same verdict."""
    ours = podrunner_accepts(real_kit, raw)
    theirs = server_accepts(real_kit, ours if ours is not None else raw_manifest(real_kit, raw))
    assert (ours is not None) == theirs, raw


def test_init_and_sidecar_manifest_is_admitted_as_built(kit: Kit) -> None:
    """What podrunner builds is admitted, sidecar first and restartPolicy Always kept."""
    spec = PodSpec(
        "busybox:1.36",
        ["true"],
        name="p",
        namespace=kit.namespace,
        init_containers=[InitContainer("fetch", image="alpine/git:2.45.2", command=["true"])],
        sidecars=[Sidecar("proxy", image="busybox:1.36", command=["sleep", "3600"])],
    )
    created = kit.backend.create(build_manifests(spec).pod, dry_run=True)
    inits = created["spec"]["initContainers"]
    assert [(c["name"], c.get("restartPolicy")) for c in inits] == [
        ("proxy", "Always"),
        ("fetch", None),
    ]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("initContainers", 1, "restartPolicy"), "Sometimes", "spec.initContainers[1].restartPolicy"),  # noqa: E501
        (("initContainers", 1, "name"), "main", "spec.initContainers[1].name"),
        (("initContainers", 0, "name"), "fetch", "spec.initContainers[1].name"),
    ],
)  # fmt: skip
def test_what_podrunner_never_builds_is_refused(
    kit: Kit, path: tuple[Any, ...], value: str, field: str
) -> None:
    """An init container's other restart policies and duplicate names: 422 with the field."""
    spec = PodSpec(
        "busybox:1.36",
        ["true"],
        name="p",
        namespace=kit.namespace,
        init_containers=[InitContainer("fetch", image="busybox:1.36", command=["true"])],
        sidecars=[Sidecar("proxy", image="busybox:1.36", command=["sleep", "1"])],
    )
    pod = build_manifests(spec).pod
    *parents, key = path
    target = pod["spec"]
    for part in parents:
        target = target[part]
    target[key] = value
    with pytest.raises(Invalid) as info:
        kit.backend.create(pod, dry_run=True)
    assert field in {c.field for c in info.value.causes}
