"""Egress control against a real API server: the run's NetworkPolicy, admitted and collected.

The policy selects exactly the run's pod, is owned by it and goes with it (the runner's
cleanup, or the cluster's garbage collector when the pod is deleted by someone else).

Runs on the fake by default and on kwok with ``--podrunner-backend=kwok`` (``nox -s
integration``). kwok has no CNI, so nothing here checks that packets are dropped: that is the
network plugin's job (docs/isolation.md lists which ones do it).
"""

from __future__ import annotations

from typing import Any

import pytest

from podrunner import CleanupPolicy, EgressPolicy, EgressPort, PodRunner, PodSpec, build_manifests
from podrunner.backends.base import Backend
from podrunner.errors import AlreadyExists, NotFound
from podrunner.manifest import MANAGED_SELECTOR, egress_name_for

pytestmark = pytest.mark.integration

POLICY = EgressPolicy.allow(
    ["0.0.0.0/0"], [443, EgressPort(53, "UDP")], except_cidrs=["10.0.0.0/8"]
)


def spec(namespace: str, **sim: str) -> PodSpec:
    annotations = {f"sim.podrunner.dev/{k.replace('_', '-')}": v for k, v in sim.items()}
    return PodSpec(
        "busybox:1.36", ["sh", "-c", "true"], namespace=namespace, annotations=annotations
    )


def wait_until(backend: Backend, check: Any, timeout: float = 60.0) -> None:
    clock = backend.clock
    deadline = clock.monotonic() + timeout
    while not check():
        assert clock.monotonic() < deadline, "timed out"
        clock.sleep(0.2)


def policies(backend: Backend, namespace: str) -> list[dict[str, Any]]:
    return backend.list("NetworkPolicy", namespace, label_selector=MANAGED_SELECTOR).items


def test_policy_selects_exactly_the_runs_pod_and_goes_with_it(
    podrunner_runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    """Two concurrent runs of one spec: each policy is owned by, and selects, its own pod."""
    runner = PodRunner(podrunner_runner.api, podrunner_namespace, egress=POLICY)
    first = runner.start(spec(podrunner_namespace, duration="30"), timeout=120)
    second = runner.start(spec(podrunner_namespace, duration="30"), timeout=120)
    with first, second:
        for handle in (first, second):
            pod = handle.wait_running(timeout=60)
            name = pod["metadata"]["name"]
            stored = podrunner_backend.get(
                "NetworkPolicy", podrunner_namespace, egress_name_for(name)
            )
            assert stored["spec"]["policyTypes"] == ["Egress"]
            assert [
                (r["kind"], r["name"], r["uid"]) for r in stored["metadata"]["ownerReferences"]
            ] == [("Pod", name, pod["metadata"]["uid"])]
            labels = stored["spec"]["podSelector"]["matchLabels"]
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
            selected = podrunner_backend.list("Pod", podrunner_namespace, label_selector=selector)
            assert [p["metadata"]["name"] for p in selected.items] == [name]
        first.cancel()
        second.cancel()
    wait_until(podrunner_backend, lambda: policies(podrunner_backend, podrunner_namespace) == [])


def test_garbage_collector_deletes_the_policy_with_its_pod(
    podrunner_runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    """A kept pod keeps its policy; deleting the pod alone takes the policy with it."""
    runner = PodRunner(podrunner_runner.api, podrunner_namespace)
    result = runner.run(
        spec(podrunner_namespace).with_egress(EgressPolicy.deny_all()),
        timeout=120,
        cleanup=CleanupPolicy.NEVER,
    )
    name = egress_name_for(result.pod_name)
    kept = podrunner_backend.get("NetworkPolicy", podrunner_namespace, name)
    assert (kept["spec"]["policyTypes"], "egress" in kept["spec"]) == (["Egress"], False)
    podrunner_backend.delete("Pod", podrunner_namespace, result.pod_name, grace_period_seconds=0)

    def gone() -> bool:
        try:
            podrunner_backend.get("NetworkPolicy", podrunner_namespace, name)
        except NotFound:
            return True
        return False

    wait_until(podrunner_backend, gone)


def test_a_pod_the_server_refuses_leaves_no_policy(
    podrunner_runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    """A pod the server refuses (409, its name is taken) leaves no policy behind.

    The policy was created before the pod; the run deletes it before raising. The other pod
    stays.
    """
    taken = spec(podrunner_namespace, failure="Unschedulable").with_name("taken")
    other = build_manifests(taken).pod
    podrunner_backend.create(other)
    runner = PodRunner(podrunner_runner.api, podrunner_namespace, egress=POLICY)
    with pytest.raises(AlreadyExists):
        runner.run(taken.with_command("true"), timeout=60)
    assert policies(podrunner_backend, podrunner_namespace) == []
    assert podrunner_backend.get("Pod", podrunner_namespace, "taken")["metadata"]["uid"]
    podrunner_backend.delete("Pod", podrunner_namespace, "taken", grace_period_seconds=0)
