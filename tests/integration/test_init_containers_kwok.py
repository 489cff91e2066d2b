"""Init containers and a native sidecar through PodRunner, unchanged on the fake and kwok.

kwok's pod stages (``podrunner/testing/controlplane/stages/pod.yaml``) report every init
container as completed when the pod starts, sidecars included; the main container follows
the simulation annotations. So a run with an init container and a sidecar completes on both;
an init container that fails can only be scripted on the fake (kwok's stages cannot fail one).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podrunner import InitContainer, InitContainerFailed, PodRunner, PodSpec, Sidecar, Volume
from podrunner.backends.base import Backend
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.state import Phase
from podrunner.testing import FakeCluster

pytestmark = pytest.mark.integration

SPEC = PodSpec(
    "busybox:1.36",
    ["sh", "-c", "cat /w/README"],
    volumes=[Volume.empty_dir("/w")],
    init_containers=[
        InitContainer("fetch", image="alpine/git:2.45.2", command=["git", "clone", "r", "/w"])
    ],
    sidecars=[Sidecar("proxy", image="busybox:1.36", command=["sleep", "3600"])],
    annotations={"sim.podrunner.dev/logs": "readme\n", "sim.podrunner.dev/duration": "1"},
)


def managed(backend: Backend, namespace: str) -> list[str]:
    out = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = backend.list(kind, namespace, label_selector=MANAGED_SELECTOR)  # type: ignore[arg-type]
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


@pytest.fixture
def runner(
    podrunner_runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> Iterator[PodRunner]:
    yield podrunner_runner
    clock = podrunner_backend.clock
    deadline = clock.monotonic() + 60
    while managed(podrunner_backend, podrunner_namespace) and clock.monotonic() < deadline:
        clock.sleep(0.5)
    assert managed(podrunner_backend, podrunner_namespace) == []


def test_run_with_an_init_container_and_a_sidecar_completes(runner: PodRunner) -> None:
    """The sidecar does not keep the run alive: the main container's result comes back."""
    seen: list[Phase] = []
    result = runner.run(SPEC, timeout=120, on_state=lambda s: seen.append(s.phase))
    assert (result.exit_code, result.logs) == (0, "readme\n")
    assert result.state.phase is Phase.SUCCEEDED
    assert Phase.RUNNING in seen


def test_init_failure_raises_at_once(
    runner: PodRunner, podrunner_backend_name: str, request: pytest.FixtureRequest
) -> None:
    """A failing init container raises InitContainerFailed with its log, nothing left."""
    if podrunner_backend_name != "fake":
        pytest.skip(
            "kwok's pod stages complete every init container; they cannot simulate one failing"
        )
    cluster: FakeCluster = request.getfixturevalue("podrunner_fake")
    cluster.when(image="alpine/git:*").fail(exit_code=128, logs="fatal: repository not found\n")
    with pytest.raises(InitContainerFailed) as err:
        runner.run(SPEC, timeout=600)
    assert (err.value.container, err.value.exit_code) == ("fetch", 128)
    assert err.value.logs == "fatal: repository not found\n"
