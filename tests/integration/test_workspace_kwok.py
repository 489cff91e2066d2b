"""A run with a workspace through PodRunner, unchanged on the fake and kwok.

kwok's pod stages report every init container as completed when the pod starts, so the
checkout "succeeds" there and the main container follows the simulation annotations: what kwok
checks is that the API server takes the workspace pod as built (token by ``secretKeyRef``,
emptyDir with a size limit) and that the run ends with nothing left. A failing clone can only
be scripted on the fake.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podrunner import InitContainerFailed, PodRunner, PodSpec, SecretRef, Workspace
from podrunner.backends.base import Backend
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.testing import FakeCluster

pytestmark = pytest.mark.integration

SPEC = PodSpec(
    "python:3.12",
    ["pytest", "-q"],
    workspace=Workspace.git(
        "https://github.com/acme/app.git",
        "main",
        credentials=SecretRef("git-token", "token"),
        size_limit="1Gi",
    ),
    secret_env={"API_KEY": "k"},
    annotations={"sim.podrunner.dev/logs": "3 passed\n", "sim.podrunner.dev/duration": "1"},
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


def test_run_with_a_workspace_completes(runner: PodRunner) -> None:
    """The checkout's init container completes, then the main container's result comes back."""
    result = runner.run(SPEC, timeout=120)
    assert (result.exit_code, result.logs) == (0, "3 passed\n")


def test_failing_clone_raises_at_once(
    runner: PodRunner, podrunner_backend_name: str, request: pytest.FixtureRequest
) -> None:
    """A clone that fails raises InitContainerFailed with git's message, nothing left."""
    if podrunner_backend_name != "fake":
        pytest.skip("kwok's pod stages complete every init container; none can fail there")
    cluster: FakeCluster = request.getfixturevalue("podrunner_fake")
    cluster.when(image="alpine/git:*").fail(exit_code=128, logs="fatal: repository not found\n")
    with pytest.raises(InitContainerFailed) as err:
        runner.run(SPEC, timeout=600)
    assert (err.value.container, err.value.exit_code) == ("workspace-0", 128)
    assert err.value.logs == "fatal: repository not found\n"


def test_run_with_an_ssh_checkout_completes(
    runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    """The API server takes the key and known_hosts as Secret volumes of the init container."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "deploy-key", "namespace": podrunner_namespace},
        "stringData": {"identity": "not a real key\n", "known_hosts": "github.com ssh-ed25519 A\n"},
    }
    podrunner_backend.create(secret)
    try:
        workspace = Workspace.git(
            "git@github.com:acme/private.git",
            ssh_key=SecretRef("deploy-key", "identity"),
            known_hosts=SecretRef("deploy-key", "known_hosts"),
        )
        result = runner.run(SPEC.replace(workspace=workspace), timeout=120)
        assert (result.exit_code, result.logs) == (0, "3 passed\n")
    finally:
        podrunner_backend.delete("Secret", podrunner_namespace, "deploy-key")
